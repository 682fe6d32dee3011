from pathlib import Path

from broker.handlers.__main__ import apis_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "apis.md"


def test_docs_apis_is_generated_from_the_api_versions_table():
    assert DOC.read_text("utf-8") == apis_markdown(), \
        "docs/apis.md is stale: run python -m broker.handlers > docs/apis.md"

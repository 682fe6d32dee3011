from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The test modules import storage_testing from this directory, whatever pytest's import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "orders-0"

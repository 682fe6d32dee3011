"""The pytest plugin installing Gregor registers (entry point `pytest11`, name `gregor`):

    def test_roundtrip(gregor_broker):
        producer = KafkaProducer(bootstrap_servers=gregor_broker.bootstrap)
        gregor_broker.fail_next("PRODUCE", "NOT_LEADER_OR_FOLLOWER")

Fixtures: `gregor_broker` (a fresh broker: its own process, free loopback port, data dir),
`gregor_cluster` (N brokers on a real ZooKeeper), `gregor_broker_factory` (more brokers,
each with its own settings). Settings, lowest precedence first: TEST_DEFAULTS, the ini
option `gregor_settings`, `--gregor-set KEY=VALUE`, the test's
`@pytest.mark.gregor(settings={...})`. Scopes: the ini options `gregor_broker_scope` and
`gregor_cluster_scope` (default `function`). docs/testing.md has the whole API.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from broker.testing import GregorBroker, GregorCluster

DEFAULT_CLUSTER_SIZE = 3


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gregor", "Gregor brokers for tests")
    group.addoption("--gregor-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a broker setting for every Gregor broker the tests start "
                         "(repeatable)")
    parser.addini("gregor_settings", "KEY=VALUE broker settings, one per line", type="linelist",
                  default=[])
    parser.addini("gregor_broker_scope", "scope of the gregor_broker fixture",
                  default="function")
    parser.addini("gregor_cluster_scope", "scope of the gregor_cluster fixture",
                  default="function")
    parser.addini("gregor_cluster_brokers", "brokers in gregor_cluster",
                  default=str(DEFAULT_CLUSTER_SIZE))


_SETTINGS = pytest.StashKey[dict]()


def pytest_configure(config: pytest.Config) -> None:
    # Read once, at start: a malformed setting is a usage error before any test runs.
    config.stash[_SETTINGS] = {
        **_parse_settings(config.getini("gregor_settings"), "gregor_settings"),
        **_parse_settings(config.getoption("gregor_set"), "--gregor-set")}
    config.addinivalue_line(
        "markers", "gregor(settings=None, brokers=None): broker settings for this test's "
                   "gregor_broker / gregor_cluster (function scope), and the cluster's size")


def _parse_settings(lines: list[str], where: str) -> dict[str, str]:
    settings = {}
    for line in lines:
        key, separator, value = line.partition("=")
        if not separator or not key.strip():
            raise pytest.UsageError(f"{where}: expected KEY=VALUE, got {line!r}")
        settings[key.strip()] = value.strip()
    return settings


def _configured_settings(config: pytest.Config) -> dict[str, str]:
    return config.stash[_SETTINGS]


def _marked(request: pytest.FixtureRequest) -> dict:
    marker = request.node.get_closest_marker("gregor") if request.scope == "function" else None
    return {} if marker is None else dict(marker.kwargs)


def _scope_from(option: str) -> Callable[[str, pytest.Config], str]:
    def scope(fixture_name: str, config: pytest.Config) -> str:
        value = config.getini(option)
        if value not in ("function", "class", "module", "package", "session"):
            raise pytest.UsageError(f"{option}={value!r}: not a pytest fixture scope")
        return value
    return scope


def _directory(request: pytest.FixtureRequest, name: str) -> Path:
    return request.getfixturevalue("tmp_path_factory").mktemp(name)


@pytest.fixture(scope=_scope_from("gregor_broker_scope"))
def gregor_broker(request: pytest.FixtureRequest) -> Iterator[GregorBroker]:
    """A fresh Gregor broker for the test; `.bootstrap` is its address."""
    settings = {**_configured_settings(request.config), **_marked(request).get("settings", {})}
    broker = GregorBroker(_directory(request, "gregor"), settings)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture
def gregor_broker_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., GregorBroker]]:
    """start(settings=None) -> another fresh broker (its own process and data); all are
    stopped after the test."""
    started: list[GregorBroker] = []

    def start(settings: dict[str, str] | None = None) -> GregorBroker:
        broker = GregorBroker(_directory(request, "gregor"),
                              {**_configured_settings(request.config), **(settings or {})})
        started.append(broker)
        return broker.start()

    try:
        yield start
    finally:
        for broker in started:
            broker.close()


@pytest.fixture(scope=_scope_from("gregor_cluster_scope"))
def gregor_cluster(request: pytest.FixtureRequest) -> Iterator[GregorCluster]:
    """N Gregor brokers (ini `gregor_cluster_brokers`, or the marker's `brokers`) on a
    real ZooKeeper, each behind a fault proxy; `.bootstrap` lists them."""
    marked = _marked(request)
    size = int(marked.get("brokers") or request.config.getini("gregor_cluster_brokers"))
    settings = {**_configured_settings(request.config), **marked.get("settings", {})}
    cluster = GregorCluster(_directory(request, "gregor-cluster"), size, settings)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failing test shows the end of each of its brokers' logs."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or not hasattr(item, "funcargs"):
        return
    for name in ("gregor_broker", "gregor_cluster"):
        value = item.funcargs.get(name)
        brokers = ([value] if isinstance(value, GregorBroker)
                   else list(value.brokers.values()) if isinstance(value, GregorCluster) else [])
        for broker in brokers:
            report.sections.append((f"gregor log ({broker.directory})",
                                    broker.log_text()[-10_000:]))

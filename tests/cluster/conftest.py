"""Every test here runs a real ZooKeeper through `gregor cluster`: make sure it is
installed first."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _zookeeper(zookeeper_installed: None) -> None:
    """Installs Debian's zookeeper when missing (tests/conftest.py)."""

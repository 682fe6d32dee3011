"""ZooKeeperServer: a real ZooKeeper process, found from Debian's package, started on a
free loopback port, recorded and stopped by PID."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from broker.zookeeper import server as server_module
from broker.zookeeper.server import (
    ZooKeeperError,
    ZooKeeperServer,
    find_zookeeper,
    four_letter_word,
    recorded_connect_string,
    recorded_pid,
    stop_recorded,
)


def test_session_server_answers_four_letter_words(zookeeper_server):
    assert four_letter_word("127.0.0.1", zookeeper_server.port, "ruok") == b"imok"
    srvr = four_letter_word("127.0.0.1", zookeeper_server.port, "srvr").decode()
    assert "Zookeeper version:" in srvr and "Mode: standalone" in srvr
    assert zookeeper_server.connect_string == f"127.0.0.1:{zookeeper_server.port}"
    config = (zookeeper_server.directory / "zoo.cfg").read_text()
    assert "clientPortAddress=127.0.0.1\n" in config
    assert "admin.enableServer=false\n" in config
    assert "4lw.commands.whitelist=ruok,srvr\n" in config
    assert f"dataDir={zookeeper_server.directory / 'data'}\n" in config


def test_a_server_is_recorded_and_stopped_by_pid_from_elsewhere(tmp_path):
    started = ZooKeeperServer.start(tmp_path / "zk", die_with_parent=True)
    try:
        assert (tmp_path / "zk" / "zookeeper.pid").read_text() == f"{started.pid}\n"
        assert recorded_pid(tmp_path / "zk") == started.pid
        assert recorded_connect_string(tmp_path / "zk") == started.connect_string
        with pytest.raises(ZooKeeperError, match=rf"PID {started.pid}\) already runs"):
            ZooKeeperServer.start(tmp_path / "zk")
        # As `gregor cluster down` does from another process: only the directory is known.
        assert stop_recorded(tmp_path / "zk") is True
        assert not started.is_running()
        assert not (tmp_path / "zk" / "zookeeper.pid").exists()
        assert recorded_pid(tmp_path / "zk") is None
        assert stop_recorded(tmp_path / "zk") is False
        with pytest.raises(OSError):
            four_letter_word("127.0.0.1", started.port, "ruok", timeout_s=1.0)
        # The same directory starts again and finds its data.
        again = ZooKeeperServer.start(tmp_path / "zk", port=started.port, die_with_parent=True)
        try:
            assert again.port == started.port and again.pid != started.pid
        finally:
            again.stop()
        assert not again.is_running()
    finally:
        started.stop()


def test_a_stale_pid_file_is_not_a_running_server(tmp_path):
    (tmp_path / "zookeeper.pid").write_text(f"{os.getpid()}\n")  # alive, but not ZooKeeper
    assert recorded_pid(tmp_path) is None
    assert stop_recorded(tmp_path) is False
    assert not (tmp_path / "zookeeper.pid").exists()


def test_a_taken_port_fails_with_the_log_tail(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ZooKeeperError) as failure:
            ZooKeeperServer.start(tmp_path, port=port, timeout_s=30, die_with_parent=True)
    message = str(failure.value)
    assert f"127.0.0.1:{port}" in message and "zookeeper.log" in message
    assert "Address already in use" in message or "BindException" in message
    assert recorded_pid(tmp_path) is None


def test_missing_package_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(server_module, "DEBIAN_ENVIRONMENT", tmp_path / "none")
    monkeypatch.setattr(server_module, "DEBIAN_JAR", tmp_path / "zookeeper.jar")
    with pytest.raises(ZooKeeperError, match=r"apt-get install -y zookeeper"):
        find_zookeeper()


def test_found_install_runs_quorum_peer_main_from_the_package():
    install = find_zookeeper()
    command = install.command(Path("/x/zoo.cfg"))
    assert command[0] == str(install.java)
    assert command[-2:] == ["org.apache.zookeeper.server.quorum.QuorumPeerMain", "/x/zoo.cfg"]
    assert all(path.exists() for path in install.classpath)
    assert any(path.name.startswith("zookeeper") for path in install.classpath)

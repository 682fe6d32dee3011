"""compat.brokers with Gregor: start on a free port, answer Metadata, stop by PID."""
from __future__ import annotations

import json
import os
import socket

import pytest
from kafka import KafkaAdminClient

from compat.brokers import BrokerError, _process_start_ticks, start_broker, stop_broker


def test_gregor_starts_answers_and_stops_by_pid(tmp_path):
    broker = start_broker("gregor", tmp_path)
    try:
        host, port = broker.bootstrap.rsplit(":", 1)
        assert host == "127.0.0.1"
        state = json.loads((tmp_path / "broker.json").read_text())
        assert (state["name"], state["pid"], state["bootstrap"]) == ("gregor", broker.pid, broker.bootstrap)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
        try:
            nodes = admin.describe_cluster()["brokers"]
        finally:
            admin.close()
        assert [(node["host"], node["port"]) for node in nodes] == [("127.0.0.1", int(port))]
        with pytest.raises(BrokerError, match="already runs"):
            start_broker("gregor", tmp_path)
    finally:
        broker.stop()
    assert _process_start_ticks(broker.pid) is None
    assert not (tmp_path / "broker.json").exists()
    assert stop_broker(tmp_path) is False


def test_a_restart_gets_a_fresh_data_dir_and_log(tmp_path):
    first = start_broker("gregor", tmp_path)
    first.stop()
    (tmp_path / "data" / "left-over").write_text("x")
    second = start_broker("gregor", tmp_path)
    try:
        assert not (tmp_path / "data" / "left-over").exists()
        assert (tmp_path / "gregor.log").read_text().count(" ready: listening on ") == 1
    finally:
        second.stop()


def test_unknown_broker_name_is_refused(tmp_path):
    with pytest.raises(BrokerError, match="unknown broker 'redpanda'"):
        start_broker("redpanda", tmp_path)
    assert os.listdir(tmp_path) == []


def test_settings_reach_gregor_and_a_listeners_setting_replaces_the_free_port(tmp_path):
    from kafka.admin import ConfigResource, ConfigResourceType

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = f"PLAINTEXT://127.0.0.1:{port}"
    broker = start_broker("gregor", tmp_path, {"num.partitions": "4", "listeners": listener,
                                               "advertised.listeners": listener})
    try:
        assert broker.bootstrap == f"127.0.0.1:{port}"
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
        try:
            configs = admin.describe_configs(
                [ConfigResource(ConfigResourceType.BROKER, 0)], config_filter="all")["broker"]["0"]
        finally:
            admin.close()
        assert configs["num.partitions"]["value"] == "4"
        assert configs["advertised.listeners"]["value"] == listener
        assert configs["advertised.listeners"]["config_source"] == "STATIC_BROKER_CONFIG"
    finally:
        broker.stop()

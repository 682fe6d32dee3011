import json
import uuid

import pytest

from broker.metadata import METADATA_FILE, LocalMetadata, TopicInfo


def test_topics_configs_and_producer_block_survive_a_reload(tmp_path):
    store = LocalMetadata.load(tmp_path)
    topic_id = uuid.UUID("0123456789abcdef0123456789abcdef")
    store.add_topic(TopicInfo("orders", topic_id, 3, {"retention.ms": "1000"}))
    store.broker_configs = {"log.retention.ms": "5000"}
    store.producer_id_block_end = 2000
    store.save()

    reloaded = LocalMetadata.load(tmp_path)
    assert reloaded.cluster_id == store.cluster_id
    assert reloaded.topics == {"orders": TopicInfo("orders", topic_id, 3, {"retention.ms": "1000"})}
    assert reloaded.topic_by_id(topic_id).name == "orders"
    assert reloaded.broker_configs == {"log.retention.ms": "5000"}
    assert reloaded.producer_id_block_end == 2000
    assert not (tmp_path / (METADATA_FILE.replace(".json", ".tmp"))).exists()


def test_removing_a_topic_forgets_its_id(tmp_path):
    store = LocalMetadata.load(tmp_path)
    topic = TopicInfo("a", uuid.uuid4(), 1)
    store.add_topic(topic)
    assert store.remove_topic("a") == topic
    assert store.topic_by_id(topic.topic_id) is None
    assert store.topics == {}


def test_cluster_id_is_kafka_shaped(tmp_path):
    cluster_id = LocalMetadata.load(tmp_path).cluster_id
    assert len(cluster_id) == 22 and "=" not in cluster_id


def test_unknown_format_version_is_refused_with_the_path(tmp_path):
    (tmp_path / METADATA_FILE).write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError) as raised:
        LocalMetadata.load(tmp_path)
    assert str(raised.value) == f"{tmp_path / METADATA_FILE}: unknown metadata format version 99"

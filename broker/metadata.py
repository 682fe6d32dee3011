"""Cluster metadata of a single broker: topics, their ids, partition counts and config
overrides, dynamic broker configs and the producer id block, kept in one JSON file in
the first log dir (written atomically, so a crash leaves the old or the new file)."""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

METADATA_FILE = "gregor-metadata.json"
FORMAT_VERSION = 1


@dataclass
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partition_count: int
    configs: dict[str, str] = field(default_factory=dict)
    leader_epoch: int = 0


@dataclass
class LocalMetadata:
    path: Path
    cluster_id: str
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    broker_configs: dict[str, str] = field(default_factory=dict)
    producer_id_block_end: int = 0
    _ids: dict[uuid.UUID, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._ids = {topic.topic_id: name for name, topic in self.topics.items()}

    @classmethod
    def load(cls, log_dir: Path) -> "LocalMetadata":
        path = log_dir / METADATA_FILE
        if not path.exists():
            return cls(path=path, cluster_id=_new_cluster_id())
        data = json.loads(path.read_text("utf-8"))
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unknown metadata format version {data.get('version')!r}")
        topics = {
            name: TopicInfo(name=name, topic_id=uuid.UUID(t["topic_id"]),
                            partition_count=t["partition_count"], configs=t["configs"],
                            leader_epoch=t.get("leader_epoch", 0))
            for name, t in data["topics"].items()
        }
        return cls(path=path, cluster_id=data["cluster_id"], topics=topics,
                   broker_configs=data["broker_configs"],
                   producer_id_block_end=data["producer_id_block_end"])

    def save(self) -> None:
        data = {
            "version": FORMAT_VERSION,
            "cluster_id": self.cluster_id,
            "topics": {
                name: {"topic_id": str(t.topic_id), "partition_count": t.partition_count,
                       "configs": t.configs, "leader_epoch": t.leader_epoch}
                for name, t in sorted(self.topics.items())
            },
            "broker_configs": self.broker_configs,
            "producer_id_block_end": self.producer_id_block_end,
        }
        temp = self.path.with_suffix(".tmp")
        with open(temp, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, self.path)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        name = self._ids.get(topic_id)
        return None if name is None else self.topics[name]

    def add_topic(self, topic: TopicInfo) -> None:
        self.topics[topic.name] = topic
        self._ids[topic.topic_id] = topic.name

    def remove_topic(self, name: str) -> TopicInfo:
        topic = self.topics.pop(name)
        del self._ids[topic.topic_id]
        return topic


def _new_cluster_id() -> str:
    # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding.
    import base64
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")

"""Kafka's small text files: offset checkpoints, leader-epoch-checkpoint,
partition.metadata, and the atomic write (temp + fsync + rename + fsync dir) they share."""
from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

CHECKPOINT_VERSION = 0


def write_atomically(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace `path` with `data` so a crash leaves either the old or the new file."""
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "wb") as file:
        file.write(data)
        if sync:
            file.flush()
            os.fsync(file.fileno())
    os.replace(temp, path)
    if sync:
        directory_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


def _parse_lines(path: Path, fields: int) -> list[list[str]]:
    """Kafka's CheckpointFile format: version line, count line, then `count` entries."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or int(lines[0]) != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: unrecognised checkpoint header {lines[:2]!r}")
    count = int(lines[1])
    entries = [line.split() for line in lines[2 : 2 + count]]
    if len(entries) != count or any(len(entry) != fields for entry in entries):
        raise ValueError(f"{path}: expected {count} entries of {fields} fields")
    return entries


def read_offset_checkpoint(path: Path) -> dict[tuple[str, int], int]:
    """`<topic> <partition> <offset>` entries; an absent file is empty."""
    if not path.exists():
        return {}
    return {(topic, int(partition)): int(offset) for topic, partition, offset in _parse_lines(path, 3)}


def write_offset_checkpoint(path: Path, offsets: dict[tuple[str, int], int]) -> None:
    lines = [str(CHECKPOINT_VERSION), str(len(offsets))]
    lines += [f"{topic} {partition} {offset}" for (topic, partition), offset in sorted(offsets.items())]
    write_atomically(path, ("\n".join(lines) + "\n").encode("utf-8"))


def read_epoch_checkpoint(path: Path) -> list[tuple[int, int]]:
    """leader-epoch-checkpoint: `<epoch> <start offset>` entries."""
    if not path.exists():
        return []
    return [(int(epoch), int(start_offset)) for epoch, start_offset in _parse_lines(path, 2)]


def write_epoch_checkpoint(path: Path, entries: list[tuple[int, int]]) -> None:
    lines = [str(CHECKPOINT_VERSION), str(len(entries))]
    lines += [f"{epoch} {start_offset}" for epoch, start_offset in entries]
    write_atomically(path, ("\n".join(lines) + "\n").encode("utf-8"))


def uuid_to_kafka(value: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 of the 16 bytes, no padding."""
    return base64.urlsafe_b64encode(value.bytes).decode("ascii").rstrip("=")


def uuid_from_kafka(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def write_partition_metadata(path: Path, topic_id: uuid.UUID) -> None:
    write_atomically(path, f"version: 0\ntopic_id: {uuid_to_kafka(topic_id)}\n".encode("utf-8"))


def read_partition_metadata(path: Path) -> uuid.UUID | None:
    if not path.exists():
        return None
    fields = dict(line.split(": ", 1) for line in path.read_text(encoding="utf-8").splitlines() if ": " in line)
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise ValueError(f"{path}: unrecognised partition metadata {fields!r}")
    return uuid_from_kafka(fields["topic_id"].strip())

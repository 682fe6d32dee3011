"""Helpers for storage tests (pytest puts this directory on sys.path)."""
from __future__ import annotations

from pathlib import Path

from storage.config import LogConfig
from storage.log import PartitionLog
from wire.records import build_batch, decode_records, iter_batches

T0_MS = 1_700_000_000_000


def batch(*values: bytes, timestamp_ms: int = T0_MS, **kwargs) -> bytes:
    """One batch whose records have keys k0.. and the given values, all at timestamp_ms."""
    return build_batch([(b"k%d" % i, value, [], timestamp_ms) for i, value in enumerate(values)], **kwargs)


def values_in(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, value) of every record in stored/fetched batch bytes."""
    result = []
    for position, header in iter_batches(data):
        for record in decode_records(memoryview(data)[position : position + header.size]):
            result.append((record.offset, record.value))
    return result


def open_log(directory: Path, config: LogConfig | None = None, *, clean_shutdown: bool = True, now_ms: int = T0_MS,
             recovery_point: int = 0, log_start_offset: int = 0, high_watermark: int = 0) -> PartitionLog:
    return PartitionLog.open(
        directory,
        config or LogConfig(),
        topic_id=None,
        recovery_point=recovery_point,
        log_start_offset=log_start_offset,
        high_watermark=high_watermark,
        now_ms=now_ms,
        clean_shutdown=clean_shutdown,
    )

"""Leader epoch -> start offset history of a partition, after Kafka's
LeaderEpochFileCache, persisted in `leader-epoch-checkpoint`."""
from __future__ import annotations

from pathlib import Path

from storage.checkpoint import read_epoch_checkpoint, write_epoch_checkpoint

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1
CHECKPOINT_NAME = "leader-epoch-checkpoint"


class LeaderEpochCache:
    def __init__(self, path: Path, entries: list[tuple[int, int]]) -> None:
        self.path = path
        self.entries = entries  # (epoch, start offset), both increasing

    @classmethod
    def load(cls, directory: Path) -> "LeaderEpochCache":
        path = directory / CHECKPOINT_NAME
        try:
            entries = read_epoch_checkpoint(path)
        except ValueError:
            entries = []  # unreadable: rebuilt from the batches' partition_leader_epoch
        return cls(path, entries)

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED_EPOCH

    def _write(self) -> None:
        write_epoch_checkpoint(self.path, self.entries)

    def persist(self) -> None:
        self._write()

    def assign(self, epoch: int, start_offset: int, *, persist: bool = True) -> None:
        """Record that `epoch` starts at `start_offset`, dropping entries it contradicts."""
        if epoch < 0:
            return
        if self.entries:
            latest_epoch, latest_start = self.entries[-1]
            if latest_epoch == epoch and latest_start <= start_offset:
                return
        self.entries = [(e, s) for e, s in self.entries if e < epoch and s < start_offset]
        self.entries.append((epoch, start_offset))
        if persist:
            self._write()

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs starting at or after `end_offset` (log truncated there)."""
        kept = [(e, s) for e, s in self.entries if s < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._write()

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now starts at `start_offset`: the epoch in force there starts there."""
        floor = [i for i, (_, s) in enumerate(self.entries) if s <= start_offset]
        if not floor:
            return
        index = floor[-1]
        epoch, start = self.entries[index]
        kept = [(epoch, max(start, start_offset))] + self.entries[index + 1 :]
        if kept != self.entries:
            self.entries = kept
            self._write()

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's OffsetForLeaderEpoch answer: (largest epoch <= requested, the start
        offset of the first epoch after it, or the log end offset for the latest)."""
        if requested_epoch == UNDEFINED_EPOCH or not self.entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self.latest_epoch:
            return requested_epoch, log_end_offset
        higher = [(e, s) for e, s in self.entries if e > requested_epoch]
        if not higher:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        floor = [(e, s) for e, s in self.entries if e <= requested_epoch]
        if not floor:
            return requested_epoch, higher[0][1]  # older than any epoch we know
        return floor[-1][0], higher[0][1]

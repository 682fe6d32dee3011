"""Producer id allocation for InitProducerId.

Ids are handed out from blocks; only the end of the current block is persisted, so a
restart skips the rest of the block instead of ever reusing an id (as Kafka's
ProducerIdManager does with its blocks)."""
from __future__ import annotations

from dataclasses import dataclass

BLOCK_SIZE = 1000


@dataclass(frozen=True)
class ProducerIdAllocation:
    producer_id: int
    new_block_end: int | None  # persist this before answering, when set


class ProducerIdManager:
    def __init__(self, persisted_block_end: int) -> None:
        self._next_id = persisted_block_end
        self._block_end = persisted_block_end

    def allocate(self) -> ProducerIdAllocation:
        new_block_end = None
        if self._next_id >= self._block_end:
            self._block_end = self._next_id + BLOCK_SIZE
            new_block_end = self._block_end
        producer_id = self._next_id
        self._next_id += 1
        return ProducerIdAllocation(producer_id, new_block_end)

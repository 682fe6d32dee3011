"""Long-poll wake-ups for Fetch: an append wakes only the fetches waiting on that
partition, so the cost is O(waiting fetches on that partition)."""
from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterable

import trio


class PartitionWaiters:
    def __init__(self) -> None:
        self._events: dict[Hashable, set[trio.Event]] = defaultdict(set)

    def notify(self, partition: Hashable) -> None:
        events = self._events.pop(partition, None)
        if events:
            for event in events:
                event.set()

    async def wait_for_append(self, partitions: Iterable[Hashable], timeout_s: float) -> bool:
        """Waits until one of `partitions` gets an append or `timeout_s` passes; True if woken."""
        event = trio.Event()
        keys = list(partitions)
        for key in keys:
            self._events[key].add(event)
        try:
            with trio.move_on_after(timeout_s):
                await event.wait()
        finally:
            for key in keys:
                waiting = self._events.get(key)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self._events[key]
        return event.is_set()

"""One thin handler per API. Registration feeds ApiVersions, so what we advertise is
exactly what a handler serves end to end."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from wire.api_keys import ApiKey
from wire.errors import ErrorCode, KafkaError

Handler = Callable[[Any, Any], Awaitable[dict | None]]


@dataclass(frozen=True)
class Registration:
    api_key: ApiKey
    versions: range
    handler: Handler


HANDLERS: dict[int, Registration] = {}

_MODULES = (
    "api_versions", "metadata", "produce", "fetch", "list_offsets",
    "offset_for_leader_epoch", "topics", "delete_records", "configs", "cluster",
    "transactions", "groups", "consumer_group", "reassignment", "acls",
)


def handles(api_key: ApiKey, versions: range) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if api_key in HANDLERS:
            raise RuntimeError(f"two handlers for {api_key.name}")
        HANDLERS[int(api_key)] = Registration(api_key, versions, handler)
        return handler
    return register


def load_handlers() -> dict[int, Registration]:
    for name in _MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return HANDLERS


def supported_versions() -> list[tuple[int, int, int]]:
    """(api_key, min_version, max_version) for every served API, sorted by key."""
    load_handlers()
    return [(key, reg.versions.start, reg.versions.stop - 1)
            for key, reg in sorted(HANDLERS.items())]


def answer_partitions(partitions, index_field: str, answer: Callable[[Any], dict],
                      failed: dict) -> list[dict]:
    """One result per requested partition: `answer(partition)`'s fields, or on a
    KafkaError its code with the `failed` fields, so one partition's refusal leaves
    the others answered."""
    results = []
    for wanted in partitions:
        index = getattr(wanted, index_field)
        try:
            results.append({index_field: index, "error_code": ErrorCode.NONE, **answer(wanted)})
        except KafkaError as exc:
            results.append({index_field: index, **failed, "error_code": exc.code})
    return results

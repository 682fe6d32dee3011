from __future__ import annotations

from broker.handlers import handles, supported_versions
from wire.api_keys import ApiKey
from wire.errors import ErrorCode


def _api_keys() -> list[dict]:
    return [{"api_key": key, "min_version": low, "max_version": high}
            for key, low, high in supported_versions()]


def unsupported_version_body() -> dict:
    return {"error_code": ErrorCode.UNSUPPORTED_VERSION, "api_keys": _api_keys()}


@handles(ApiKey.API_VERSIONS, versions=range(0, 5))
async def api_versions(ctx, request) -> dict:
    return {"error_code": ErrorCode.NONE, "api_keys": _api_keys(), "throttle_time_ms": 0}

"""DescribeAcls, CreateAcls and DeleteAcls as Kafka answers them without an authorizer
(`authorizer.class.name` empty, its default, and the only value Gregor accepts): every
request, and each creation and filter in it, gets SECURITY_DISABLED (Kafka's AclApis)."""
from __future__ import annotations

from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode

SECURITY_DISABLED = int(ErrorCode.SECURITY_DISABLED)


@handles(ApiKey.DESCRIBE_ACLS, versions=range(0, 4))
async def describe_acls(ctx, request) -> dict:
    return {"throttle_time_ms": 0, "error_code": SECURITY_DISABLED,
            "error_message": "No Authorizer is configured on the broker", "resources": []}


@handles(ApiKey.CREATE_ACLS, versions=range(0, 4))
async def create_acls(ctx, request) -> dict:
    return {"throttle_time_ms": 0, "results": [
        {"error_code": SECURITY_DISABLED, "error_message": "No Authorizer is configured."}
        for _creation in request.creations]}


@handles(ApiKey.DELETE_ACLS, versions=range(0, 4))
async def delete_acls(ctx, request) -> dict:
    return {"throttle_time_ms": 0, "filter_results": [
        {"error_code": SECURITY_DISABLED, "error_message": "No Authorizer is configured.",
         "matching_acls": []}
        for _filter in request.filters]}

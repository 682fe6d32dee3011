from __future__ import annotations

from broker.handlers import handles
from wire.api_keys import ApiKey
from wire.errors import ErrorCode


@handles(ApiKey.INIT_PRODUCER_ID, versions=range(0, 6))
async def init_producer_id(ctx, request) -> dict:
    if request.transactional_id is not None:
        # No transaction coordinator yet: Kafka's answer when none is available.
        return {"throttle_time_ms": 0, "error_code": ErrorCode.COORDINATOR_NOT_AVAILABLE,
                "producer_id": -1, "producer_epoch": -1}
    # An idempotent producer (also one bumping its epoch after an error, KIP-360) gets a
    # fresh id at epoch 0, as Kafka's ProducerIdManager hands out.
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE,
            "producer_id": ctx.broker.allocate_producer_id(), "producer_epoch": 0}

"""The broker in process on a loopback port, and a client that speaks our own wire
encoder to it, for the handler tests."""
from __future__ import annotations

import struct

import pytest
import trio

from broker.broker import Broker
from broker.config import load_broker_config
from broker.server import serve
from wire.protocol import decode_response, encode_request

TIMEOUT_S = 30


class Client:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.correlation_id = 0
        self.buffer = bytearray()

    async def send(self, api_key: int, version: int, body: dict) -> int:
        self.correlation_id += 1
        await self.stream.send_all(encode_request(api_key, version, self.correlation_id,
                                                  "test-client", body))
        return self.correlation_id

    async def receive(self, api_key: int, version: int):
        with trio.fail_after(TIMEOUT_S):
            while len(self.buffer) < 4 or len(self.buffer) < 4 + struct.unpack(">i", self.buffer[:4])[0]:
                data = await self.stream.receive_some(65536)
                assert data, "broker closed the connection"
                self.buffer += data
        size = struct.unpack(">i", self.buffer[:4])[0]
        frame = bytes(self.buffer[4:4 + size])
        del self.buffer[:4 + size]
        return decode_response(api_key, version, frame)

    async def call(self, api_key: int, version: int, body: dict):
        correlation_id = await self.send(api_key, version, body)
        received_id, response = await self.receive(api_key, version)
        assert received_id == correlation_id
        return response


# Retention checks run every 50 ms for the retention test; the records' 2023 timestamps
# must not expire under the broker default meanwhile, so only topic overrides expire.
BROKER_SETTINGS = {"listeners": "PLAINTEXT://127.0.0.1:0", "num.partitions": "2",
                   "log.retention.check.interval.ms": "50", "log.retention.ms": "-1"}


@pytest.fixture
async def broker(tmp_path):
    config = load_broker_config(None, {**BROKER_SETTINGS, "log.dirs": str(tmp_path / "data")})
    opened = Broker.open(config)
    async with trio.open_nursery() as nursery:
        opened.test_address = await nursery.start(serve, opened)
        yield opened
        nursery.cancel_scope.cancel()
    opened.close()  # as the CLI does: after the server and its maintenance threads stopped


@pytest.fixture
async def client(broker):
    stream = await trio.open_tcp_stream(*broker.test_address)
    yield Client(stream)
    await stream.aclose()

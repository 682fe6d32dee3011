"""A small inter-broker client: one TCP connection per peer broker, requests sent and
answered one at a time in order (Kafka's NetworkClient to a single node, without
pipelining), reconnected on the next request after any failure. Every wait is bounded."""
from __future__ import annotations

import itertools
import logging
from typing import Any, Callable

import trio

from wire.errors import WireError
from wire.protocol import FrameReader, decode_response, encode_request

log = logging.getLogger(__name__)

RECEIVE_BYTES = 1 << 16
MAX_RESPONSE_BYTES = 1 << 30  # a fetch response is bounded by replica.fetch.response.max.bytes


class PeerError(Exception):
    """The peer could not be reached or did not answer in time; the connection is closed."""


class PeerClient:
    def __init__(self, node_id: int, endpoint_of: Callable[[int], tuple[str, int] | None], *,
                 client_id: str, connect_timeout_s: float) -> None:
        self.node_id = node_id
        self._endpoint_of = endpoint_of
        self._client_id = client_id
        self._connect_timeout_s = connect_timeout_s
        self._stream: trio.SocketStream | None = None
        self._endpoint: tuple[str, int] | None = None
        self._frames = FrameReader(MAX_RESPONSE_BYTES)
        self._correlation_ids = itertools.count(1)
        self._lock = trio.Lock()  # one request in flight: answers come back in order

    async def request(self, api_key: int, api_version: int, body: dict, *,
                      timeout_s: float) -> Any:
        """Sends one request and returns the decoded response body. PeerError when the
        peer is unknown, unreachable, closes the connection, answers garbage or takes
        longer than `timeout_s`; the connection is then dropped and the next request
        connects again."""
        async with self._lock:
            try:
                with trio.fail_after(timeout_s):
                    stream = await self._connected()
                    correlation_id = next(self._correlation_ids)
                    await stream.send_all(encode_request(api_key, api_version, correlation_id,
                                                         self._client_id, body))
                    frame = await self._receive_frame(stream)
                received_id, response = decode_response(api_key, api_version, frame)
                if received_id != correlation_id:
                    raise WireError(f"correlation id {received_id}, expected {correlation_id}")
                return response
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError,
                    trio.TooSlowError, WireError) as exc:
                await self.aclose()
                raise PeerError(f"broker {self.node_id} at {self._describe()}: "
                                f"{type(exc).__name__}: {exc}") from exc

    async def _connected(self) -> trio.SocketStream:
        endpoint = self._endpoint_of(self.node_id)
        if endpoint is None:
            raise OSError(f"no endpoint known for broker {self.node_id}")
        if self._stream is not None and endpoint != self._endpoint:
            await self.aclose()  # the peer re-registered elsewhere
        if self._stream is None:
            with trio.fail_after(self._connect_timeout_s):
                self._stream = await trio.open_tcp_stream(*endpoint)
            self._endpoint = endpoint
            self._frames = FrameReader(MAX_RESPONSE_BYTES)
        return self._stream

    async def _receive_frame(self, stream: trio.SocketStream) -> bytes:
        while True:
            frame = self._frames.next_frame()
            if frame is not None:
                return frame
            data = await stream.receive_some(RECEIVE_BYTES)
            if not data:
                raise trio.BrokenResourceError("connection closed by the peer")
            self._frames.feed(data)

    def _describe(self) -> str:
        return "unknown" if self._endpoint is None else f"{self._endpoint[0]}:{self._endpoint[1]}"

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await trio.aclose_forcefully(stream)


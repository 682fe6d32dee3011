"""A TCP proxy in front of a broker's listener (or ZooKeeper), run by the test process in a
thread of its own, through which the fault API acts while clients are running:

- delay every response of an API key by N ms (responses stay in request order, as a
  broker sends them);
- answer the next N requests of an API key with an error code, without the broker
  seeing them (like librdkafka's mock cluster);
- close every connection, refuse new ones (a broker cut off), or refuse the connections
  of one peer broker (recognised by its client id, `broker-<id>-...`).

Kafka frames are read only to learn each request's API key, acks and client id; a
`raw` proxy (ZooKeeper) forwards bytes untouched.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field

import trio

from broker.testing.error_responses import error_response
from wire.api_keys import ApiKey
from wire.protocol import FrameReader, decode_request_body, decode_request_header, encode_response

log = logging.getLogger(__name__)

RECEIVE_BYTES = 1 << 16
MAX_FRAME_BYTES = 1 << 30
CONNECT_TIMEOUT_S = 10.0


@dataclass
class _Faults:
    delays_ms: dict[int, int] = field(default_factory=dict)
    errors: dict[int, deque] = field(default_factory=dict)  # api key -> codes, one per request
    isolated: bool = False
    refused_peers: set[int] = field(default_factory=set)  # node ids, by client id


@dataclass(eq=False)
class _Connection:
    scope: trio.CancelScope
    client_id: str | None = None


class FaultProxy:
    """Listens on 127.0.0.1:<free port> and forwards to `target`. Every method may be
    called from any thread; it returns once the change applies."""

    def __init__(self, target: tuple[str, int] | None = None, *, raw: bool = False,
                 name: str = "proxy") -> None:
        self.target = target  # may be set after start, before the first connection
        self.raw = raw
        self.name = name
        self.port = 0
        self._faults = _Faults()
        self._connections: set[_Connection] = set()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        self._thread = threading.Thread(target=self._run_thread, name=f"gregor-{self.name}",
                                        daemon=True)
        self._thread.start()
        if not self._started.wait(CONNECT_TIMEOUT_S) or self._error is not None:
            raise RuntimeError(f"{self.name} did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._token is None:
            return
        try:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        except trio.RunFinishedError:
            pass
        self._thread.join(CONNECT_TIMEOUT_S)
        self._token = None

    def _run_thread(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to start() or logged: a thread has no caller
            self._error = exc
            self._started.set()
            log.exception("%s failed", self.name)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._serve, listeners)
            self._started.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def _call(self, function, *args):
        return trio.from_thread.run_sync(function, *args, trio_token=self._token)

    # -- the fault API ----------------------------------------------------------------------

    def delay(self, api_key: int, delay_ms: int) -> None:
        """Holds every response to `api_key` for delay_ms (0: no more delay)."""
        def apply() -> None:
            if delay_ms > 0:
                self._faults.delays_ms[int(api_key)] = delay_ms
            else:
                self._faults.delays_ms.pop(int(api_key), None)
        self._call(apply)

    def fail_next(self, api_key: int, error_code: int, count: int = 1) -> None:
        """Answers the next `count` requests of `api_key` with `error_code`."""
        self._call(lambda: self._faults.errors.setdefault(int(api_key), deque()).extend(
            [int(error_code)] * count))

    def pending_errors(self, api_key: int) -> int:
        return self._call(lambda: len(self._faults.errors.get(int(api_key), ())))

    def close_connections(self) -> None:
        """Closes every connection through the proxy (clients reconnect)."""
        self._call(self._close_where, lambda connection: True)

    def isolate(self) -> None:
        """Closes every connection and refuses new ones until heal()."""
        def apply() -> None:
            self._faults.isolated = True
            self._close_where(lambda connection: True)
        self._call(apply)

    def refuse_peer(self, node_id: int) -> None:
        """Closes and refuses the connections of broker `node_id` (its client id)."""
        def apply() -> None:
            self._faults.refused_peers.add(node_id)
            self._close_where(lambda connection: self._refused(connection.client_id))
        self._call(apply)

    def heal(self) -> None:
        """Accepts connections again (isolate and refuse_peer undone)."""
        def apply() -> None:
            self._faults.isolated = False
            self._faults.refused_peers.clear()
        self._call(apply)

    def clear(self) -> None:
        """Drops every delay and pending error, and heals."""
        def apply() -> None:
            self._faults = _Faults()
        self._call(apply)

    def _close_where(self, condition) -> None:
        for connection in list(self._connections):
            if condition(connection):
                connection.scope.cancel()

    def _refused(self, client_id: str | None) -> bool:
        if not client_id or not client_id.startswith("broker-"):
            return False
        node = client_id.split("-", 2)[1]
        return node.isdigit() and int(node) in self._faults.refused_peers

    # -- forwarding -------------------------------------------------------------------------

    async def _serve(self, client: trio.SocketStream) -> None:
        if self._faults.isolated:
            await trio.aclose_forcefully(client)
            return
        connection = _Connection(trio.CancelScope())
        self._connections.add(connection)
        try:
            with connection.scope:
                with trio.fail_after(CONNECT_TIMEOUT_S):
                    upstream = await trio.open_tcp_stream(*self.target)
                try:
                    async with trio.open_nursery() as nursery:
                        if self.raw:
                            nursery.start_soon(self._pipe, client, upstream, nursery)
                            nursery.start_soon(self._pipe, upstream, client, nursery)
                        else:
                            send, receive = trio.open_memory_channel(float("inf"))
                            nursery.start_soon(self._requests, connection, client, upstream,
                                               send, nursery)
                            nursery.start_soon(self._responses, upstream, client, receive,
                                               nursery)
                finally:
                    await trio.aclose_forcefully(upstream)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass
        except Exception:
            # Bytes this proxy cannot read (or our bug): only this connection closes.
            log.exception("%s: closing a connection", self.name)
        finally:
            self._connections.discard(connection)
            await trio.aclose_forcefully(client)

    @staticmethod
    async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, nursery) -> None:
        while data := await source.receive_some(RECEIVE_BYTES):
            await sink.send_all(data)
        nursery.cancel_scope.cancel()

    async def _requests(self, connection: _Connection, client: trio.SocketStream,
                        upstream: trio.SocketStream, pending: trio.MemorySendChannel,
                        nursery) -> None:
        """Client to broker: forwards each request, or answers it here with an injected
        error; tells the response task what comes next, in order."""
        frames = FrameReader(MAX_FRAME_BYTES)
        while (frame := await _next_frame(client, frames)) is not None:
            header, body_offset = decode_request_header(frame)
            if connection.client_id is None:
                connection.client_id = header.client_id
                if self._refused(header.client_id):
                    nursery.cancel_scope.cancel()
                    return
            codes = self._faults.errors.get(header.api_key)
            if codes:
                request = decode_request_body(header, frame, body_offset)
                body = error_response(header.api_key, header.api_version, request,
                                      codes.popleft())
                await pending.send(("local", header.api_key, encode_response(header, body)))
                continue
            await upstream.send_all(len(frame).to_bytes(4, "big") + frame)
            if header.api_key == ApiKey.PRODUCE and decode_request_body(
                    header, frame, body_offset).acks == 0:
                continue  # no response comes
            await pending.send(("forward", header.api_key, None))
        nursery.cancel_scope.cancel()  # the client closed the connection

    async def _responses(self, upstream: trio.SocketStream, client: trio.SocketStream,
                         pending: trio.MemoryReceiveChannel, nursery) -> None:
        """Broker to client, in request order: the broker's next response, or the
        injected one; delayed when its API key is."""
        frames = FrameReader(MAX_FRAME_BYTES)
        async for kind, api_key, local in pending:
            if kind == "local":
                response = local
            else:
                frame = await _next_frame(upstream, frames)
                if frame is None:  # the broker closed the connection
                    nursery.cancel_scope.cancel()
                    return
                response = len(frame).to_bytes(4, "big") + frame
            delay_ms = self._faults.delays_ms.get(api_key)
            if delay_ms:
                await trio.sleep(delay_ms / 1000)
            await client.send_all(response)


async def _next_frame(stream: trio.SocketStream, frames: FrameReader) -> bytes | None:
    """The next whole frame read from `stream`; None once it is closed."""
    while (frame := frames.next_frame()) is None:
        data = await stream.receive_some(RECEIVE_BYTES)
        if not data:
            return None
        frames.feed(data)
    return frame

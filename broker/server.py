"""The trio server: one task per connection, requests answered in order."""
from __future__ import annotations

import logging
import os
import socket

import trio

from broker.broker import Broker, Endpoint, peer_name
from wire.errors import WireError
from wire.protocol import FrameReader

log = logging.getLogger(__name__)

RECEIVE_BYTES = 1 << 16


async def serve_connection(stream: trio.SocketStream, broker: Broker) -> None:
    """Reads frames, answers each in order; bad bytes close only this connection.
    Requests a client pipelines are answered one at a time, in order, as Kafka does."""
    try:
        peer = peer_name(stream.socket.getpeername())
    except OSError:
        peer = "unknown peer"
    frames = FrameReader(broker.config.socket_request_max_bytes)
    try:
        while True:
            frame = frames.next_frame()
            if frame is None:
                data = await stream.receive_some(RECEIVE_BYTES)
                if not data:
                    return
                frames.feed(data)
                continue
            response = await broker.handle(frame, peer)
            if response is None:  # acks=0 produce: no response
                continue
            if isinstance(response, bytes):
                await stream.send_all(response)
            else:
                await send_parts(stream, response)
    except WireError as exc:
        log.info("closing connection from %s: %s", peer, exc)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


async def send_parts(stream: trio.SocketStream, parts: list) -> None:
    """Sends a response's parts in order: bytes as they are, file ranges (FileSlice)
    with os.sendfile from the segment file straight into the socket."""
    for part in parts:
        if isinstance(part, bytes):
            if part:
                await stream.send_all(part)
        else:
            await _sendfile(stream.socket, part.fd, part.position, part.size)


async def _sendfile(sock, fd: int, position: int, size: int) -> None:
    while size > 0:
        try:
            sent = os.sendfile(sock.fileno(), fd, position, size)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        except OSError as exc:
            raise trio.BrokenResourceError(f"sendfile: {exc}") from exc
        if sent == 0:  # the file is shorter than the slice: never leave a frame short
            raise trio.BrokenResourceError("sendfile: segment file ended early")
        position += sent
        size -= sent
        await trio.lowlevel.checkpoint()


async def serve(broker: Broker, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Binds the listener, reports the bound (host, port) through task_status, serves."""
    host, port = broker.config.listeners[0]
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    bound_host, bound_port = listeners[0].socket.getsockname()[:2]
    broker.advertised = _advertised_endpoint(broker, bound_host, bound_port)
    async with trio.open_nursery() as nursery:
        broker.start_background(nursery)
        task_status.started((bound_host, bound_port))
        await trio.serve_listeners(lambda stream: serve_connection(stream, broker), listeners,
                                   handler_nursery=nursery)


def _advertised_endpoint(broker: Broker, bound_host: str, bound_port: int) -> Endpoint:
    advertised = broker.config.advertised_listeners
    if advertised:
        host, port = advertised[0]
        return Endpoint(host or socket.getfqdn(), port or bound_port)
    if bound_host in ("0.0.0.0", "::"):
        # Kafka advertises the canonical host name for a wildcard listener.
        return Endpoint(socket.getfqdn(), bound_port)
    return Endpoint(bound_host, bound_port)

"""Sockets of the gossip layer: one UDP endpoint and one TCP listener on the same port number,
length-prefixed TCP frames bounded in size and time, address parsing, and rate-limited
warnings for input we drop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import cast

from nomadd.gossip.member import DEFAULT_SERF_PORT
from nomadd.structs.errors import ConfigError, NomaddError

__all__ = [
    "MAX_TCP_FRAME_BYTES",
    "MAX_UDP_PACKET_BYTES",
    "UDP_BUDGET_BYTES",
    "FrameError",
    "RateLimitedLog",
    "UDPEndpoint",
    "guess_advertise_addr",
    "parse_host_port",
    "read_frame",
    "write_frame",
]

logger = logging.getLogger(__name__)

UDP_BUDGET_BYTES = 1400  # plaintext payload we send: fits a 1500-byte MTU with envelope + headers
MAX_UDP_PACKET_BYTES = 65_507  # largest datagram we accept
MAX_TCP_FRAME_BYTES = 8 * 1024 * 1024  # a push-pull of ~10k members; refuse anything larger
DROP_LOG_INTERVAL_S = 10.0  # at most one warning per kind of garbage per 10 s
_FRAME_HEADER = struct.Struct("!I")


class FrameError(NomaddError):
    """A TCP frame is oversized, truncated or late. Logged and the connection is closed."""


class RateLimitedLog:
    """Logs one warning per ``key`` per interval and counts what it suppressed."""

    __slots__ = ("_interval", "_last", "_logger", "_suppressed")

    def __init__(self, log: logging.Logger, interval: float = DROP_LOG_INTERVAL_S) -> None:
        self._logger = log
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        if len(self._last) > 256:  # keys are a small fixed set; guard anyway
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        self._logger.warning(msg + " suppressed=%d", *args, suppressed)


def parse_host_port(address: str, default_port: int = DEFAULT_SERF_PORT) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → (host, port)."""
    address = address.strip()
    if not address:
        raise ConfigError("gossip: join address: empty")
    host, port_text = address, ""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ConfigError(f"gossip: join address: {address!r}: missing ']'")
        host, rest = address[1:end], address[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ConfigError(f"gossip: join address: {address!r}: junk after ']'")
        port_text = rest[1:]
    elif address.count(":") == 1:
        host, port_text = address.split(":")
    if not port_text:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError as err:
        raise ConfigError(f"gossip: join address: {address!r}: bad port") from err
    if not 0 < port <= 65535:
        raise ConfigError(f"gossip: join address: {address!r}: bad port")
    return host, port


def guess_advertise_addr(bind_addr: str) -> str:
    """The address others should use when we bind a wildcard: the source of the default route."""
    if bind_addr not in ("", "0.0.0.0", "::"):
        return bind_addr
    family = socket.AF_INET6 if bind_addr == "::" else socket.AF_INET
    probe = "2001:db8::1" if family == socket.AF_INET6 else "192.0.2.1"  # TEST-NET: no packet sent
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((probe, 9))
            addr: str = sock.getsockname()[0]
        except OSError:
            return "::1" if family == socket.AF_INET6 else "127.0.0.1"
    return addr


async def read_frame(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            header = await reader.readexactly(_FRAME_HEADER.size)
            (size,) = _FRAME_HEADER.unpack(header)
            if size == 0 or size > MAX_TCP_FRAME_BYTES:
                raise FrameError(f"frame size {size} out of bounds")
            return await reader.readexactly(size)
    except asyncio.IncompleteReadError as err:
        raise FrameError("truncated frame") from err
    except TimeoutError as err:
        raise FrameError("frame read timed out") from err


async def write_frame(writer: asyncio.StreamWriter, data: bytes, timeout: float) -> None:
    if len(data) > MAX_TCP_FRAME_BYTES:
        raise FrameError(f"frame size {len(data)} out of bounds")
    writer.write(_FRAME_HEADER.pack(len(data)) + data)
    try:
        async with asyncio.timeout(timeout):
            await writer.drain()
    except TimeoutError as err:
        raise FrameError("frame write timed out") from err


class UDPEndpoint(asyncio.DatagramProtocol):
    """Hands every datagram to ``on_packet``; never lets an exception reach the loop."""

    def __init__(self, on_packet: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on_packet = on_packet
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # 3.11's selector datagram transport does not subclass asyncio.DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._on_packet(data, (addr[0], addr[1]))
        except Exception:  # a bug must not kill the endpoint; input errors are caught earlier
            logger.exception("gossip udp handler failed src=%s:%s", addr[0], addr[1])

    def error_received(self, exc: Exception) -> None:
        logger.debug("gossip udp error err=%s", exc)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.transport.sendto(data, addr)
        except OSError as err:
            logger.debug("gossip udp send failed dst=%s:%d err=%s", addr[0], addr[1], err)

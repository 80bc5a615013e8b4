"""raft.wire_buffers: pysyncobj's connection buffers grown and cut in place, the read loop
bounded, and every message (encrypted, keyed) read back as pysyncobj would."""

from __future__ import annotations

import errno
import os
import random
import socket
import struct
import time
import zlib
from typing import Any

import pytest
from pysyncobj import tcp_connection
from pysyncobj.encryptor import getEncryptor
from pysyncobj.poller import PollPoller

from nomadd.server.raft import glue
from nomadd.server.raft.wire_buffers import READ_AHEAD_BYTES

SEED = 20261204
RECV = 64 * 1024  # what the fake socket hands out per call


class _FakeSocket:
    """A non-blocking socket: ``recv`` hands out a prepared stream ``RECV`` bytes at a time,
    ``send`` takes at most ``RECV`` bytes a call and ``room`` in all (the peer reads it, the
    test gives more); both raise EAGAIN when there is nothing to read or no room."""

    def __init__(self, incoming: bytes = b"") -> None:
        self.incoming = incoming
        self.pos = 0
        self.recvs = 0
        self.sent = bytearray()
        self.room = 4 * RECV

    def recv(self, size: int) -> bytes:
        if self.pos >= len(self.incoming):
            raise BlockingIOError(errno.EAGAIN, "no data")
        out = self.incoming[self.pos : self.pos + min(size, RECV)]
        self.pos += len(out)
        self.recvs += 1
        return out

    def send(self, data: Any) -> int:
        if not self.room:
            raise BlockingIOError(errno.EAGAIN, "no room")
        take = bytes(data[: min(RECV, self.room)])
        self.room -= len(take)
        self.sent += take
        return len(take)

    def getsockopt(self, *args: Any) -> int:
        return 0

    def close(self) -> None:
        pass


def _frame(message: Any) -> bytes:
    data = tcp_connection.zlib.compress(tcp_connection.pickle.dumps(message), 3)
    return struct.pack("i", len(data)) + data


def _connection(sock: _FakeSocket) -> Any:
    conn = tcp_connection.TcpConnection(poller=None, recvBufferSize=1 << 20, sendBufferSize=1 << 20)
    conn._TcpConnection__socket = sock
    conn._TcpConnection__state = tcp_connection.CONNECTION_STATE.CONNECTED
    return conn


def test_the_read_loop_stops_at_its_bound_and_the_buffer_is_grown_and_cut_in_place() -> None:
    messages = [{"n": i, "chunk": os.urandom(1 << 20)} for i in range(24)]  # 24 MiB, incompressible
    sock = _FakeSocket(b"".join(map(_frame, messages)))
    conn = _connection(sock)
    got: list[Any] = []
    first: bytearray | None = None
    for _ in range(100):
        conn._TcpConnection__tryReadBuffer()
        buf = conn._TcpConnection__readBuffer
        # pysyncobj's loop reads while the socket has data (here: all 24 MiB at once)
        assert len(buf) < READ_AHEAD_BYTES + RECV, "the read loop did not stop at its bound"
        if first is None:
            first = buf
        assert buf is first, "the read buffer was copied instead of grown and cut in place"
        while (message := conn._TcpConnection__processParseMessage()) is not None:
            got.append(message)
        if len(got) == len(messages):
            break
    assert got == messages
    assert conn.state == tcp_connection.CONNECTION_STATE.CONNECTED


def test_the_write_buffer_is_sent_from_and_cut_in_place() -> None:
    sock = _FakeSocket()
    conn = _connection(sock)
    messages = [{"n": i, "chunk": os.urandom(300_000)} for i in range(8)]
    buffers = set()
    for message in messages:
        conn.send(message)  # sends what the socket takes, keeps the rest
        buffers.add(id(conn._TcpConnection__writeBuffer))
    assert conn.getSendBufferSize() > 0
    for _ in range(1000):
        if not conn.getSendBufferSize():
            break
        sock.room = 4 * RECV
        conn._TcpConnection__trySendBuffer()
        buffers.add(id(conn._TcpConnection__writeBuffer))
    assert len(buffers) == 1, "the write buffer was copied instead of cut in place"
    assert bytes(sock.sent) == b"".join(map(_frame, messages))


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    for s in (a, b):
        s.setblocking(False)
    return a, b


def test_encrypted_keyed_messages_cross_a_real_socket_whole_and_in_order() -> None:
    rng = random.Random(SEED)
    print(f"seed={SEED}")
    poller = PollPoller()
    a, b = _pair()
    received: list[Any] = []
    sender = tcp_connection.TcpConnection(poller, socket=a, sendBufferSize=1 << 16, recvBufferSize=1 << 16)
    receiver = tcp_connection.TcpConnection(
        poller, socket=b, onMessageReceived=received.append, sendBufferSize=1 << 16, recvBufferSize=1 << 16
    )
    for conn in (sender, receiver):
        conn.encryptor = glue.VerifyOnceEncryptor(getEncryptor("raft secret"))
    sender.sendRandKey = receiver.recvRandKey = b"k" * 32
    messages = [
        {"n": i, "data": rng.randbytes(rng.choice((10, 5_000, 700_000, 1_500_000)))} for i in range(40)
    ]
    for message in messages:
        sender.send(message)
    deadline = time.monotonic() + 60
    while len(received) < len(messages) and time.monotonic() < deadline:
        poller.poll(0.05)
    assert received == messages
    assert receiver.state == tcp_connection.CONNECTION_STATE.CONNECTED
    sender.disconnect()
    receiver.disconnect()


@pytest.mark.parametrize("damage", ["token", "replay"])
def test_a_message_failing_its_checks_drops_the_connection(damage: str) -> None:
    encryptor = getEncryptor("raft secret")

    def frame(message: Any, at: int) -> bytes:
        data = encryptor.encrypt_at_time(zlib.compress(tcp_connection.pickle.dumps(message)), at)
        if damage == "token" and message == "second":
            data = data[:-10] + bytes(10)  # the HMAC no longer matches
        return struct.pack("i", len(data)) + data

    times = (100, 200) if damage == "token" else (200, 100)  # replay: the second is older
    sock = _FakeSocket(frame("first", times[0]) + frame("second", times[1]))
    conn = _connection(sock)
    conn.encryptor = glue.VerifyOnceEncryptor(encryptor)
    closed: list[bool] = []
    conn.setOnDisconnectedCallback(lambda: closed.append(True))
    conn._TcpConnection__poller = type("P", (), {"unsubscribe": lambda self, fd: None})()
    conn._TcpConnection__fileno = None
    conn._TcpConnection__tryReadBuffer()
    assert conn._TcpConnection__processParseMessage() == "first"
    assert conn._TcpConnection__processParseMessage() is None
    assert closed == [True]
    assert conn.state == tcp_connection.CONNECTION_STATE.DISCONNECTED

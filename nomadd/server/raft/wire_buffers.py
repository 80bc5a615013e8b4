"""pysyncobj's TCP read and write buffers, linear in what passes through them.

pysyncobj 0.3.17 keeps a connection's unread and unsent bytes in ``bytes`` objects:

* each ``recv`` is appended with ``buffer += incoming`` (a copy of the whole buffer), and its
  read loop goes on while the socket has data;
* each message parsed is cut off with ``buffer = buffer[4 + size:]`` (a copy of the rest);
* each ``send`` that takes part of the write buffer keeps ``buffer[sent:]`` (a copy of the rest).

While a leader streams a snapshot (a million allocations: 317 MB in 1.3 MB messages) the
follower's read loop found more data after every ``recv``, and its buffer grew by a megabyte a
time, each copied whole: a wiped follower's tick thread spent 22-28 s of CPU in 30 s on that
line (py-spy: 2,015 of its 2,161 samples), heard no heartbeat meanwhile, and asked for
pre-votes; the transfer started over three times (``docs/contributing/raft.md``, catch-up).

:func:`install` replaces the three methods with equivalents that keep each buffer as one
``bytearray``: appended to in place, cut at the front in place (CPython moves the start), so a
byte is copied a bounded number of times. The read loop also stops once :data:`READ_AHEAD_BYTES`
wait unparsed: their messages are handled, and the poller (level-triggered) calls again for the
rest. Messages, checks and failures are pysyncobj's: the same length prefix, the same
``extract_timestamp`` (not older than the last) then ``decrypt`` of one token object
(:class:`~nomadd.server.raft.glue.VerifyOnceEncryptor` relies on that), the same
``zlib``/``pickle`` (looked up in pysyncobj's module, so :mod:`.wire_compress` still applies),
the same random-key check, and any failure disconnects.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Any

from pysyncobj import tcp_connection as _tcp_connection_module

__all__ = ["READ_AHEAD_BYTES", "install"]

READ_AHEAD_BYTES = 8 << 20  # unparsed bytes after which a read round stops (about 6 chunks)
_LENGTH = struct.Struct("i")  # pysyncobj's length prefix: native int, as it writes it
_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK)


def _buffer(conn: Any, name: str) -> bytearray:
    """The connection's buffer ``name`` as a bytearray (pysyncobj resets it to ``bytes()`` at
    each connect and disconnect: converted once, then kept)."""
    buf = getattr(conn, name)
    if type(buf) is not bytearray:
        buf = bytearray(buf)
        setattr(conn, name, buf)
    return buf


def _read(conn: Any) -> bool:
    """``TcpConnection.__processRead``: one ``recv`` into the read buffer; True to read again."""
    sock = conn._TcpConnection__socket
    try:
        incoming = sock.recv(conn._TcpConnection__recvBufferSize)
    except OSError as err:
        if err.errno not in _RETRY:
            conn.disconnect()
        return False
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or not incoming:
        conn.disconnect()
        return False
    buf = _buffer(conn, "_TcpConnection__readBuffer")
    buf += incoming
    return len(buf) < READ_AHEAD_BYTES


def _parse(conn: Any) -> Any:
    """``TcpConnection.__processParseMessage``: the next whole message, None if there is none
    yet (or it failed its checks: then the connection is closed)."""
    buf = _buffer(conn, "_TcpConnection__readBuffer")
    if len(buf) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack_from(buf)
    if size < 0:
        conn.disconnect()
        return None
    end = _LENGTH.size + size
    if len(buf) < end:
        return None
    with memoryview(buf) as view:
        data = view[_LENGTH.size : end].tobytes()  # released before the buffer is cut
    try:
        encryptor = conn.encryptor
        if encryptor:
            stamp = encryptor.extract_timestamp(data)
            if stamp < conn.recvLastTimestamp:
                raise ValueError("a message older than the last one")
            conn.recvLastTimestamp = stamp
            data = encryptor.decrypt(data)
        module = _tcp_connection_module
        message = module.pickle.loads(module.zlib.decompress(data))
        if conn.recvRandKey:
            rand_key, message = message
            if rand_key != conn.recvRandKey:
                raise ValueError("a message with another connection's key")
    except Exception:  # pysyncobj's: whatever fails, the connection is dropped
        conn.disconnect()
        return None
    del buf[:end]
    return message


def _send(conn: Any) -> bool:
    """``TcpConnection.__processSend``: one ``send`` of the write buffer; True to send again."""
    buf = _buffer(conn, "_TcpConnection__writeBuffer")
    if not buf:
        return False
    try:
        sent = conn._TcpConnection__socket.send(buf)
    except OSError as err:
        if err.errno not in _RETRY:
            conn.disconnect()
        return False
    if sent < 0:
        conn.disconnect()
        return False
    if sent == 0:
        return False
    del buf[:sent]
    return True


def install() -> None:
    """Put :func:`_read`, :func:`_parse` and :func:`_send` in pysyncobj's ``TcpConnection``
    (idempotent)."""
    cls = _tcp_connection_module.TcpConnection
    cls._TcpConnection__processRead = _read
    cls._TcpConnection__processParseMessage = _parse
    cls._TcpConnection__processSend = _send

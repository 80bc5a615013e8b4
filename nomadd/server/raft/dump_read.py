"""Reading Raft full dumps (:mod:`nomadd.server.raft.dump` writes them; its doc has the format).

* :class:`Inflater`: a restart's load reads the gzip through a thread that inflates it ahead of
  the decoder (zlib releases the GIL and checks the CRC and length itself);
* :func:`read_format_2`: the decoded store and pysyncobj's tail data, every check passed;
* :class:`Incoming`: a snapshot arriving from the leader, decoded by a thread from the file
  pysyncobj writes its chunks to, as it grows.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import queue
import threading
import zlib
from concurrent.futures import Future
from typing import Any

import msgpack  # type: ignore[import-untyped]

from nomadd.server.state.store_codec import Decoded, decode_dump_stream, dump_reader

__all__ = ["END", "INCOMING_IDLE_S", "MAGIC", "Incoming", "Inflater", "read_format_2"]

logger = logging.getLogger("nomadd.server.raft")

MAGIC = b"nomadd raft dump 2\n"  # a format 1 file starts with a pickle opcode instead
END = "end"
INFLATE_READ_BYTES = 1 << 20  # a restart's inflating thread reads the dump file this much at a time
INFLATE_AHEAD_PIECES = 16  # ... and keeps at most this many inflated pieces (<= 4 MiB) ahead
INCOMING_IDLE_S = 120.0  # a snapshot receiver with no chunk for this long stops (leader gone)
_MAX_TAIL_BYTES = 1 << 28  # the pickled tail: two entries (each <= MAX_ENTRY_BYTES) and the cluster


class Inflater:
    """The decompressed bytes of a gzip file, inflated by a thread ahead of the reader: zlib
    releases the GIL while it inflates, so at a restart (the dump decoded on the tick thread)
    it runs beside the decoding instead of within it (about a tenth of a dump's load). zlib
    checks each gzip member's header and trailer (CRC and length); a file that ends early, or
    whose bytes after a member are not another, is refused."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._pieces: queue.Queue[bytes | BaseException] = queue.Queue(INFLATE_AHEAD_PIECES)
        self._buf = b""
        self._pos = 0
        self._end = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raft-dump-inflate", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._pieces.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            raw = b""
            while True:  # one gzip member after another (a dump has three: raft/dump.py)
                inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # the gzip container
                while not inflater.eof:
                    raw = raw or self._f.read(INFLATE_READ_BYTES)
                    if not raw:
                        raise ValueError("raft dump ends early (truncated)")
                    while raw and not inflater.eof:
                        out = inflater.decompress(raw, INFLATE_READ_BYTES * 4)
                        raw = inflater.unconsumed_tail
                        if out and not self._put(out):
                            return
                raw = inflater.unused_data or self._f.read(INFLATE_READ_BYTES)
                if not raw:
                    break
            self._put(b"")
        except BaseException as err:
            self._put(err)

    def read(self, size: int = -1, /) -> bytes:
        want = size if size >= 0 else 1 << 62
        out: list[bytes] = []
        while want > 0:
            if self._pos >= len(self._buf):
                if self._end:
                    break
                item = self._pieces.get()
                if isinstance(item, BaseException):
                    self._end = True
                    raise item
                if not item:
                    self._end = True
                    break
                self._buf, self._pos = item, 0
            take = self._buf[self._pos : self._pos + want]
            self._pos += len(take)
            want -= len(take)
            out.append(take)
        return b"".join(out)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _read_exactly(g: Any, n: int) -> bytes:
    data: bytes = g.read(n)
    if len(data) != n:
        raise ValueError("raft dump ends early (truncated)")
    return data


def read_format_2(g: Any) -> tuple[Decoded, Any]:
    """The decoded store and tail data of a format 2 file, read past :data:`MAGIC`; every
    check passed (end mark, then the end of the gzip stream: its CRC and length)."""
    size = int.from_bytes(_read_exactly(g, 8), "big")
    if size > _MAX_TAIL_BYTES:  # a damaged length: never read the file whole for it
        raise ValueError(f"raft dump has a bad tail length {size}")
    tail = pickle.loads(_read_exactly(g, size))
    unpacker = dump_reader(g)
    decoded = decode_dump_stream(unpacker)
    try:
        end = unpacker.unpack()
    except msgpack.OutOfData:
        raise ValueError("raft dump has no end mark (truncated)") from None
    if end != [END, decoded[0]["latest"]]:
        raise ValueError(f"raft dump has a bad end mark {end!r}")
    try:
        unpacker.unpack()  # reads to the end of the file: gzip checks its CRC and length there
    except msgpack.OutOfData:
        return decoded, tail
    raise ValueError("raft dump has data after its end mark")


class _Stopped(Exception):
    """The incoming snapshot was cancelled, or no chunk came for ``INCOMING_IDLE_S``."""


class Incoming:
    """A snapshot from the leader, decoded by a thread from the file pysyncobj writes its chunks
    to, as they arrive (:meth:`read` waits at the end of the file for the next chunk)."""

    def __init__(self, path: str) -> None:
        self._f = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by the decoding thread)
        self.ino = os.fstat(self._f.fileno()).st_ino
        self._cond = threading.Condition()
        self._chunks = 0  # chunks written so far: a read that found nothing waits for the next
        self._done = False  # the last chunk is written
        self._stopped = False
        self.result: Future[tuple[Decoded, Any]] = Future()
        self._thread = threading.Thread(target=self._run, name="raft-snapshot-decode", daemon=True)
        self._thread.start()

    def chunk(self, last: bool) -> None:
        with self._cond:
            self._chunks += 1
            self._done = self._done or last
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def read(self, size: int = -1, /) -> bytes:
        """gzip's reads: what the file holds, or wait for the next chunk (b"": the last is read)."""
        while True:
            with self._cond:
                seen, done, stopped = self._chunks, self._done, self._stopped
            if stopped:
                raise _Stopped("stopped")
            data = self._f.read(size)
            if data or done:
                return data or b""
            with self._cond:
                waiting = self._chunks == seen and not self._stopped and not self._done
                if waiting and not self._cond.wait(INCOMING_IDLE_S) and self._chunks == seen:
                    self._stopped = True

    def _run(self) -> None:
        try:
            with gzip.GzipFile(fileobj=self, mode="rb") as g:  # type: ignore[call-overload]
                if g.read(len(MAGIC)) != MAGIC:
                    raise ValueError("not a format 2 dump")  # decoded from the file after all
                self.result.set_result(read_format_2(g))
        except BaseException as err:
            self.result.set_exception(err)
        finally:
            self._f.close()

    def take(self, filename: str) -> tuple[Decoded, Any] | None:
        """The decoded snapshot, once the last chunk is in and ``filename`` is the file read
        (pysyncobj renamed it into place); None when it is not (then the file is read whole)."""
        try:
            same = os.stat(filename).st_ino == self.ino
        except OSError:
            same = False
        with self._cond:
            if not (same and self._done):
                self._stopped = True
            self._cond.notify_all()
        try:
            return self.result.result()
        except Exception as err:
            if same and self._done:
                logger.warning("raft snapshot from the leader not decoded as it arrived err=%r", err)
            return None

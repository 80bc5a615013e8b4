"""raft.wire_compress: large incompressible messages go out stored, the rest compressed; every
stream stays one that zlib.decompress reads (peers of any version)."""

from __future__ import annotations

import os
import pickle
import zlib

from pysyncobj import tcp_connection

import nomadd.server.raft.glue  # noqa: F401  (installs it)
from nomadd.server.raft.wire_compress import PROBE_FROM, AdaptiveZlib


def _stored(stream: bytes) -> bool:
    return stream[:2] == b"\x78\x01"  # zlib header of level 0 (no compression)


def test_pysyncobj_transport_compresses_through_it() -> None:
    assert tcp_connection.zlib is AdaptiveZlib


def test_a_large_incompressible_message_is_stored_and_reads_back() -> None:
    chunk = pickle.dumps({"type": "append_entries", "serialized": (os.urandom(1 << 20), False, False)}, 4)
    out = tcp_connection.zlib.compress(chunk, 3)
    assert _stored(out), "an incompressible MiB was compressed again"
    assert zlib.decompress(out) == chunk


def test_compressible_and_small_messages_keep_the_callers_level() -> None:
    entries = pickle.dumps({"entries": [(b"placement " * 100_000, 7, 1)]}, 4)
    assert len(entries) >= PROBE_FROM
    out = AdaptiveZlib.compress(entries, 3)
    assert not _stored(out) and len(out) < len(entries) // 10
    assert zlib.decompress(out) == entries
    small = os.urandom(PROBE_FROM - 1)
    assert AdaptiveZlib.compress(small, 3) == zlib.compress(small, 3)

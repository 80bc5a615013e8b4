"""The compression of pysyncobj's wire messages, chosen per message.

pysyncobj's TCP transport compresses every message with ``zlib.compress(pickle, 3)`` (and then
encrypts it), on the leader's tick thread, once per follower. Most messages are AppendEntries of
msgpack (a C1M entry of ~60 KB compresses to a quarter, 7 ms per MiB), but a snapshot's chunks
(the Raft dump, gzip) and an operator restore's chunks (the archive, gzip) do not compress at
all, and zlib spent 22 ms per MiB finding that out: at a million allocations, 263 MB of archive
to two followers was 11 s of the leader's CPU. Messages of :data:`PROBE_FROM` bytes or more are
probed first: a sample from the middle compressed at level 1; when it does not shrink by
:data:`MIN_GAIN`, the message is sent *stored* (level 0: a valid zlib stream, 1 ms per MiB), so
every receiver, of this version or an older one, reads it with ``zlib.decompress`` as before.
Smaller messages keep pysyncobj's level.

:func:`install` puts :class:`AdaptiveZlib` where pysyncobj's ``tcp_connection`` looks up ``zlib``.
"""

from __future__ import annotations

import zlib

from pysyncobj import tcp_connection as _tcp_connection_module

__all__ = ["MIN_GAIN", "PROBE_BYTES", "PROBE_FROM", "AdaptiveZlib", "install"]

PROBE_FROM = 256 * 1024  # messages this large are probed
PROBE_BYTES = 16 * 1024  # the sample's size (about 0.3 ms at level 1)
MIN_GAIN = 0.9  # a sample compressed to more than this fraction of its size: store the message


class AdaptiveZlib:
    """The ``zlib`` pysyncobj's transport sees: ``compress`` chooses stored for incompressible
    large messages; everything else is the real module's."""

    error = zlib.error
    decompress = staticmethod(zlib.decompress)

    @staticmethod
    def compress(data: bytes, level: int = -1) -> bytes:
        size = len(data)
        if size >= PROBE_FROM:
            mid = size // 2
            sample = data[mid : mid + PROBE_BYTES]
            if len(zlib.compress(sample, 1)) > MIN_GAIN * len(sample):
                return zlib.compress(data, 0)
        return zlib.compress(data, level)


def install() -> None:
    """Make pysyncobj's transport compress through :class:`AdaptiveZlib` (idempotent)."""
    _tcp_connection_module.zlib = AdaptiveZlib

"""The envelope around every gossip packet and push-pull frame: a header byte, then either the
plain msgpack payload or ``nonce(12) || AES-GCM(payload)``.

Header byte: ``PROTOCOL_VERSION`` in the low bits, ``ENCRYPTED_FLAG`` set when sealed. The header
and a channel label (``b"udp"`` / ``b"tcp"``) are the AEAD associated data, so a sealed UDP packet
cannot be replayed as a TCP frame and the header cannot be flipped. A node with a key refuses
plain envelopes, a node without one refuses sealed ones: mixed pools never merge.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nomadd.structs.errors import NomaddError

__all__ = [
    "ENCRYPTED_FLAG",
    "ENVELOPE_OVERHEAD_BYTES",
    "PROTOCOL_VERSION",
    "Envelope",
    "EnvelopeError",
]

PROTOCOL_VERSION = 1
ENCRYPTED_FLAG = 0x80
_NONCE_BYTES = 12  # AES-GCM standard nonce; random per message (2^-32 collision bound is ample)
_TAG_BYTES = 16
ENVELOPE_OVERHEAD_BYTES = 1 + _NONCE_BYTES + _TAG_BYTES  # worst case, used for UDP budgets


class EnvelopeError(NomaddError):
    """A packet or frame could not be opened: wrong version, wrong/missing key, tampering.

    Never leaves the gossip package: the receiver logs it (rate-limited) and drops the input.
    Malformed payloads inside a good envelope are :class:`nomadd.gossip.messages.MessageError`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # stable short text, used as the rate-limit key


class Envelope:
    """Seals and opens envelopes with an optional AES key (16, 24 or 32 bytes)."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes | None) -> None:
        self._aead = AESGCM(key) if key is not None else None

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    def seal(self, payload: bytes, label: bytes) -> bytes:
        if self._aead is None:
            return bytes([PROTOCOL_VERSION]) + payload
        header = bytes([PROTOCOL_VERSION | ENCRYPTED_FLAG])
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self._aead.encrypt(nonce, payload, header + label)

    def open(self, data: bytes, label: bytes) -> bytes:
        if not data:
            raise EnvelopeError("empty")
        header = data[0]
        if header & ~ENCRYPTED_FLAG != PROTOCOL_VERSION:
            raise EnvelopeError("unknown protocol version")
        sealed = bool(header & ENCRYPTED_FLAG)
        if self._aead is None:
            if sealed:
                raise EnvelopeError("encrypted message but no key is configured")
            return data[1:]
        if not sealed:
            raise EnvelopeError("unencrypted message but encryption is enabled")
        if len(data) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise EnvelopeError("truncated encrypted message")
        nonce = data[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, data[1 + _NONCE_BYTES :], data[:1] + label)
        except InvalidTag as err:
            raise EnvelopeError("decryption failed (wrong key?)") from err

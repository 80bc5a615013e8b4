"""The envelope around every gossip packet and push-pull frame: a header byte, then either the
plain msgpack payload or ``nonce(12) || AES-GCM(payload)``.

Header byte: ``PROTOCOL_VERSION`` in the low bits, ``ENCRYPTED_FLAG`` set when sealed. The header
and a channel label (``b"udp"`` / ``b"tcp"``) are the AEAD associated data, so a sealed UDP packet
cannot be replayed as a TCP frame and the header cannot be flipped. A node with a key refuses
plain envelopes, a node without one refuses sealed ones: mixed pools never merge.

The keys form a keyring (Serf's): the primary key seals, every installed key may open, so a
cluster rotates without a partition — install the new key everywhere, make it primary
everywhere, then remove the old one (``nomadd operator gossip keyring``).
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
    "KeyringOpError",
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


class KeyringOpError(NomaddError):
    """A keyring change that cannot be made (unknown key, removing the primary, no encryption)."""


_KEY_SIZES = (16, 24, 32)


class Envelope:
    """Seals and opens envelopes with an optional keyring of AES keys (16, 24 or 32 bytes);
    the first key is the primary one."""

    __slots__ = ("_aeads", "_keys")

    def __init__(self, key: bytes | None, *, keys: list[bytes] | None = None) -> None:
        self._keys: list[bytes] = list(keys) if keys else ([key] if key is not None else [])
        self._aeads = [AESGCM(k) for k in self._keys]

    @property
    def encrypted(self) -> bool:
        return bool(self._keys)

    @property
    def _aead(self) -> AESGCM | None:
        return self._aeads[0] if self._aeads else None

    def keys(self) -> list[bytes]:
        """The installed keys, primary first."""
        return list(self._keys)

    def _set(self, keys: list[bytes]) -> None:
        self._aeads = [AESGCM(k) for k in keys]
        self._keys = keys

    def install(self, key: bytes) -> None:
        if not self._keys:
            raise KeyringOpError("gossip encryption is not enabled on this agent (server.encrypt)")
        if len(key) not in _KEY_SIZES:
            raise KeyringOpError(f"key must be 16, 24 or 32 bytes once decoded, got {len(key)}")
        if key not in self._keys:
            self._set([*self._keys, key])

    def use(self, key: bytes) -> None:
        if key not in self._keys:
            raise KeyringOpError("key is not installed; install it first")
        self._set([key, *(k for k in self._keys if k != key)])

    def remove(self, key: bytes) -> None:
        if key not in self._keys:
            raise KeyringOpError("key is not installed")
        if key == self._keys[0]:
            raise KeyringOpError("removing the primary key is not allowed; use another key first")
        self._set([k for k in self._keys if k != key])

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
        for aead in self._aeads:
            try:
                return aead.decrypt(nonce, data[1 + _NONCE_BYTES :], data[:1] + label)
            except InvalidTag:
                continue
        raise EnvelopeError("decryption failed (wrong key?)")

"""The envelope: AES-GCM with a random nonce; key mismatches and tampering are refused."""

from __future__ import annotations

import pytest

from nomadd.gossip.crypto import ENVELOPE_OVERHEAD_BYTES, Envelope, EnvelopeError, KeyringOpError
from nomadd.gossip.member import GossipConfig
from nomadd.structs.errors import ConfigError

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


@pytest.mark.parametrize("size", [16, 24, 32])
def test_sealed_round_trip_and_random_nonce(size: int) -> None:
    env = Envelope(KEY[:size])
    a = env.seal(b"hello", b"udp")
    b = env.seal(b"hello", b"udp")
    assert a != b
    assert b"hello" not in a
    assert len(a) == len(b"hello") + ENVELOPE_OVERHEAD_BYTES
    assert env.open(a, b"udp") == b"hello"


def test_plain_round_trip() -> None:
    env = Envelope(None)
    assert env.open(env.seal(b"x", b"tcp"), b"tcp") == b"x"


@pytest.mark.parametrize(
    ("sender", "receiver"),
    [(KEY, OTHER), (KEY, None), (None, KEY)],
    ids=["wrong key", "key vs none", "none vs key"],
)
def test_mismatched_keys_are_refused(sender: bytes | None, receiver: bytes | None) -> None:
    data = Envelope(sender).seal(b"payload", b"udp")
    with pytest.raises(EnvelopeError):
        Envelope(receiver).open(data, b"udp")


def test_tampering_and_channel_confusion_are_refused() -> None:
    env = Envelope(KEY)
    data = bytearray(env.seal(b"payload", b"udp"))
    with pytest.raises(EnvelopeError):
        env.open(bytes(data), b"tcp")
    data[-1] ^= 1
    with pytest.raises(EnvelopeError):
        env.open(bytes(data), b"udp")


@pytest.mark.parametrize("data", [b"", b"\x02abc", b"\x81short", b"\xff" * 40])
def test_malformed_envelopes_are_refused(data: bytes) -> None:
    for env in (Envelope(KEY), Envelope(None)):
        with pytest.raises(EnvelopeError):
            env.open(data, b"udp")


def test_config_rejects_bad_key_sizes() -> None:
    with pytest.raises(ConfigError, match="16, 24 or 32"):
        GossipConfig(name="a.global", encrypt_key=b"short")


def test_keyring_rotation_never_splits_the_pool() -> None:
    old, new = b"o" * 32, b"n" * 16
    a, b = Envelope(old), Envelope(old)
    a.install(new)  # installed, not yet used: a still seals with old, opens both
    assert a.keys() == [old, new]
    assert b.open(a.seal(b"x", b"udp"), b"udp") == b"x"
    a.use(new)
    with pytest.raises(EnvelopeError):
        b.open(a.seal(b"x", b"udp"), b"udp")  # b lacks the new key
    b.install(new)
    assert b.open(a.seal(b"x", b"udp"), b"udp") == b"x"
    assert a.open(b.seal(b"y", b"udp"), b"udp") == b"y"  # b still seals with old: a opens it
    with pytest.raises(KeyringOpError, match="primary"):
        a.remove(new)
    a.remove(old)
    assert a.keys() == [new]
    with pytest.raises(EnvelopeError):
        a.open(Envelope(old).seal(b"z", b"udp"), b"udp")
    with pytest.raises(KeyringOpError, match="not installed"):
        a.use(old)
    with pytest.raises(KeyringOpError, match="16, 24 or 32"):
        a.install(b"short")
    with pytest.raises(KeyringOpError, match="not enabled"):
        Envelope(None).install(new)

"""Wire codec: every message round-trips; hostile input raises MessageError and nothing else."""

from __future__ import annotations

import random

import msgpack  # type: ignore[import-untyped]
import pytest

from nomadd.gossip.messages import (
    MAX_MESSAGES_PER_PACKET,
    Ack,
    Alive,
    Dead,
    ForceLeave,
    Intent,
    Message,
    MessageError,
    MsgType,
    NodeState,
    Ping,
    PingReq,
    PushPull,
    Suspect,
    decode_message,
    decode_packet,
    decode_push_pull,
    encode_message,
    encode_push_pull,
    pack_compound,
)

SAMPLES: list[Message] = [
    Ping(seq=1, target="a.global", source="b.global"),
    Ack(seq=2**40, source="b.global"),
    PingReq(seq=3, target="a.global", addr="10.0.0.1", port=4648, source="c.global"),
    Alive(name="a.global", addr="::1", port=1, inc=7, tags={"role": "nomad", "dc": "dc1"}),
    Suspect(name="a.global", inc=3, source="b.global"),
    Dead(name="a.global", inc=3, source="a.global"),
    Intent(name="a.global", inc=9),
    ForceLeave(name="a.global", inc=0, prune=True),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_message_round_trip(msg: Message) -> None:
    assert decode_message(encode_message(msg)) == msg


def test_compound_packet_round_trip() -> None:
    payload = pack_compound(encode_message(m) for m in SAMPLES * 3)
    assert decode_packet(payload) == SAMPLES * 3


def test_push_pull_round_trip() -> None:
    pp = PushPull(
        join=True,
        source="a.global",
        states=[
            NodeState(
                name="b.global",
                addr="10.0.0.2",
                port=4648,
                inc=4,
                tags={"role": "nomad"},
                state="suspect",
                leaving=False,
            )
        ],
    )
    assert decode_push_pull(encode_push_pull(pp)) == pp


def pack(obj: object) -> bytes:
    out: bytes = msgpack.packb(obj, use_bin_type=True)
    return out


BAD_PACKETS = {
    "empty": b"",
    "truncated": pack_compound([encode_message(SAMPLES[3])])[:-3],
    "not an array": pack({"t": 1}),
    "empty array": pack([]),
    "array of ints": pack([1, 2, 3]),
    "unknown type": pack([{"t": 99}]),
    "bool type": pack([{"t": True, "q": 1, "n": "", "s": "x"}]),
    "missing field": pack([{"t": int(MsgType.PING), "q": 1, "s": "x"}]),
    "negative seq": pack([{"t": int(MsgType.PING), "q": -1, "n": "", "s": "x"}]),
    "huge int": b"\x91\x83\xa1t\x01\xa1q\xcf" + b"\xff" * 8 + b"\xa1n\xa0\xa1s\xa1x",
    "string seq": pack([{"t": int(MsgType.ACK), "q": "1", "s": "x"}]),
    "bytes name": pack([{"t": int(MsgType.INTENT), "n": b"a", "i": 1}]),
    "empty name": pack([{"t": int(MsgType.INTENT), "n": "", "i": 1}]),
    "long name": pack([{"t": int(MsgType.INTENT), "n": "a" * 1000, "i": 1}]),
    "bad port": pack([{"t": int(MsgType.ALIVE), "n": "a", "a": "10.0.0.1", "p": 70000, "i": 1, "g": {}}]),
    "host name addr": pack(
        [{"t": int(MsgType.ALIVE), "n": "a", "a": "example.com", "p": 1, "i": 1, "g": {}}]
    ),
    "tags not map": pack([{"t": int(MsgType.ALIVE), "n": "a", "a": "10.0.0.1", "p": 1, "i": 1, "g": []}]),
    "tag int value": pack(
        [{"t": int(MsgType.ALIVE), "n": "a", "a": "10.0.0.1", "p": 1, "i": 1, "g": {"k": 1}}]
    ),
    "too many tags": pack(
        [
            {
                "t": int(MsgType.ALIVE),
                "n": "a",
                "a": "10.0.0.1",
                "p": 1,
                "i": 1,
                "g": {str(i): "v" for i in range(100)},
            }
        ]
    ),
    "prune not bool": pack([{"t": int(MsgType.FORCE_LEAVE), "n": "a", "i": 1, "x": 1}]),
    "push-pull over udp": pack([{"t": int(MsgType.PUSH_PULL), "j": True, "s": "a", "m": []}]),
    "too many messages": pack_compound([encode_message(SAMPLES[0])] * (MAX_MESSAGES_PER_PACKET + 1)),
    "int map key": pack([{1: 2}]),
    "deep nesting": b"\x91" * 5000,
    "ext type": b"\x91\xd4\x01\x00",
    "trailing bytes": pack([{"t": int(MsgType.ACK), "q": 1, "s": "x"}]) + b"\x00",
}


@pytest.mark.parametrize("data", BAD_PACKETS.values(), ids=BAD_PACKETS.keys())
def test_bad_packets_raise_message_error(data: bytes) -> None:
    with pytest.raises(MessageError):
        decode_packet(data)


BAD_PUSH_PULLS = {
    "array": pack([]),
    "ping": pack({"t": int(MsgType.PING), "q": 1, "n": "", "s": "x"}),
    "states not list": pack({"t": int(MsgType.PUSH_PULL), "j": True, "s": "a", "m": {}}),
    "bad state": pack(
        {
            "t": int(MsgType.PUSH_PULL),
            "j": True,
            "s": "a",
            "m": [{"n": "b", "a": "10.0.0.1", "p": 1, "i": 1, "g": {}, "st": "zombie", "l": False}],
        }
    ),
    "state not map": pack({"t": int(MsgType.PUSH_PULL), "j": True, "s": "a", "m": [1]}),
    "join not bool": pack({"t": int(MsgType.PUSH_PULL), "j": 1, "s": "a", "m": []}),
}


@pytest.mark.parametrize("data", BAD_PUSH_PULLS.values(), ids=BAD_PUSH_PULLS.keys())
def test_bad_push_pulls_raise_message_error(data: bytes) -> None:
    with pytest.raises(MessageError):
        decode_push_pull(data)


def test_random_garbage_never_raises_anything_but_message_error() -> None:
    rng = random.Random(4648)
    good = pack_compound(encode_message(m) for m in SAMPLES)
    for _ in range(3000):
        if rng.random() < 0.5:
            data = rng.randbytes(rng.randrange(0, 200))
        else:  # mutate a valid packet: flips and truncations reach deeper into the decoder
            buf = bytearray(good[: rng.randrange(1, len(good) + 1)])
            for _ in range(rng.randrange(1, 4)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            data = bytes(buf)
        try:
            decode_packet(data)
        except MessageError:
            pass
        try:
            decode_push_pull(data)
        except MessageError:
            pass

"""Gossip wire messages and their msgpack codec.

A UDP packet (inside its envelope, see ``crypto.py``) is a msgpack **array of messages**: the
first is the main one (a ping, ack, ...), the rest are piggy-backed broadcasts. A push-pull TCP
frame carries exactly one :class:`PushPull`. Each message is a msgpack map with ``"t"`` (a
:class:`MsgType`) and short keys. Decoding validates every field's type and size and raises
:class:`MessageError` on anything else, so garbage never reaches the state machine.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgpack  # type: ignore[import-untyped]

from nomadd.structs.errors import NomaddError

__all__ = [
    "Ack",
    "Alive",
    "Dead",
    "ForceLeave",
    "Intent",
    "Message",
    "MessageError",
    "MsgType",
    "NodeState",
    "Ping",
    "PingReq",
    "PushPull",
    "Suspect",
    "decode_message",
    "decode_packet",
    "decode_push_pull",
    "encode_message",
    "encode_push_pull",
    "pack_compound",
]

MAX_NAME_CHARS = 256  # node names and addresses
MAX_TAGS = 64
MAX_TAG_CHARS = 1024
MAX_MESSAGES_PER_PACKET = 64
MAX_PUSH_PULL_STATES = 10_000
_STATES = ("alive", "suspect", "dead", "left")  # internal liveness states, see state.py


class MessageError(NomaddError):
    """A payload is not valid gossip msgpack (bad type, missing field, too large).

    Never leaves the gossip package: logged (rate-limited) and dropped. Envelope problems
    (version, key) are :class:`nomadd.gossip.crypto.EnvelopeError`.
    """


class MsgType(enum.IntEnum):
    """Wire numbers: append-only, never reused."""

    PING = 1
    ACK = 2
    PING_REQ = 3
    ALIVE = 4
    SUSPECT = 5
    DEAD = 6
    INTENT = 7
    FORCE_LEAVE = 8
    PUSH_PULL = 9


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    seq: int
    target: str  # the name the sender thinks it probes (a restarted peer may differ)
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    seq: int
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PingReq:
    """Ask the receiver to ping ``target`` at ``addr:port`` and relay the ack (same seq)."""

    seq: int
    target: str
    addr: str
    port: int
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Alive:
    name: str
    addr: str
    port: int
    inc: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspect:
    name: str
    inc: int
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Dead:
    """``source == name`` means a graceful leave (state "left"), otherwise a failure."""

    name: str
    inc: int
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """A member announces it is about to leave (status "leaving")."""

    name: str
    inc: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceLeave:
    """Turn a *failed* member into "left" everywhere (and drop it when ``prune``)."""

    name: str
    inc: int
    prune: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeState:
    name: str
    addr: str
    port: int
    inc: int
    tags: dict[str, str]
    state: str  # one of _STATES
    leaving: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PushPull:
    join: bool
    source: str
    states: list[NodeState]


Message = Ping | Ack | PingReq | Alive | Suspect | Dead | Intent | ForceLeave


def _tags(tags: dict[str, str]) -> dict[str, str]:
    return dict(tags)


def _to_wire(msg: Message) -> dict[str, object]:
    match msg:
        case Ping():
            return {"t": MsgType.PING, "q": msg.seq, "n": msg.target, "s": msg.source}
        case Ack():
            return {"t": MsgType.ACK, "q": msg.seq, "s": msg.source}
        case PingReq():
            return {
                "t": MsgType.PING_REQ,
                "q": msg.seq,
                "n": msg.target,
                "a": msg.addr,
                "p": msg.port,
                "s": msg.source,
            }
        case Alive():
            return {
                "t": MsgType.ALIVE,
                "n": msg.name,
                "a": msg.addr,
                "p": msg.port,
                "i": msg.inc,
                "g": _tags(msg.tags),
            }
        case Suspect():
            return {"t": MsgType.SUSPECT, "n": msg.name, "i": msg.inc, "s": msg.source}
        case Dead():
            return {"t": MsgType.DEAD, "n": msg.name, "i": msg.inc, "s": msg.source}
        case Intent():
            return {"t": MsgType.INTENT, "n": msg.name, "i": msg.inc}
        case ForceLeave():
            return {"t": MsgType.FORCE_LEAVE, "n": msg.name, "i": msg.inc, "x": msg.prune}


def encode_message(msg: Message) -> bytes:
    """One message as msgpack bytes (an element of a compound packet)."""
    out: bytes = msgpack.packb(_to_wire(msg), use_bin_type=True)
    return out


def pack_compound(encoded: Iterable[bytes]) -> bytes:
    """Join already-encoded messages into one packet payload (a msgpack array)."""
    parts = list(encoded)
    header: bytes = msgpack.Packer().pack_array_header(len(parts))
    return header + b"".join(parts)


def encode_push_pull(msg: PushPull) -> bytes:
    states = [
        {
            "n": s.name,
            "a": s.addr,
            "p": s.port,
            "i": s.inc,
            "g": _tags(s.tags),
            "st": s.state,
            "l": s.leaving,
        }
        for s in msg.states
    ]
    wire = {"t": MsgType.PUSH_PULL, "j": msg.join, "s": msg.source, "m": states}
    out: bytes = msgpack.packb(wire, use_bin_type=True)
    return out


# --- decoding -----------------------------------------------------------------------------


def _unpack(data: bytes) -> object:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as err:  # msgpack raises assorted types on hostile input
        raise MessageError(f"not msgpack: {type(err).__name__}") from err


def _str(d: dict[object, object], key: str, max_chars: int = MAX_NAME_CHARS) -> str:
    value = d.get(key)
    if not isinstance(value, str) or len(value) > max_chars:
        raise MessageError(f"field {key!r}: expected a string of at most {max_chars} chars")
    return value


def _nonempty(d: dict[object, object], key: str) -> str:
    value = _str(d, key)
    if not value:
        raise MessageError(f"field {key!r}: must not be empty")
    return value


def _ip(d: dict[object, object], key: str) -> str:
    """An IP literal: a host name here would make the loop resolve it, blocking, on send."""
    value = _nonempty(d, key)
    try:
        ipaddress.ip_address(value)
    except ValueError as err:
        raise MessageError(f"field {key!r}: expected an IP address") from err
    return value


def _int(d: dict[object, object], key: str, hi: int = 2**63 - 1) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
        raise MessageError(f"field {key!r}: expected an integer in [0, {hi}]")
    return value


def _bool(d: dict[object, object], key: str) -> bool:
    value = d.get(key)
    if not isinstance(value, bool):
        raise MessageError(f"field {key!r}: expected a boolean")
    return value


def _tag_map(d: dict[object, object], key: str) -> dict[str, str]:
    value = d.get(key)
    if not isinstance(value, dict) or len(value) > MAX_TAGS:
        raise MessageError(f"field {key!r}: expected a map of at most {MAX_TAGS} tags")
    tags: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise MessageError(f"field {key!r}: tag keys and values must be strings")
        if len(k) > MAX_TAG_CHARS or len(v) > MAX_TAG_CHARS:
            raise MessageError(f"field {key!r}: tag too long")
        tags[k] = v
    return tags


def _msg_type(d: dict[object, object]) -> MsgType:
    raw = d.get("t")
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise MessageError("field 't': expected a message type")
    try:
        return MsgType(raw)
    except ValueError as err:
        raise MessageError(f"unknown message type {raw}") from err


def _from_wire(obj: object) -> Message:
    if not isinstance(obj, dict):
        raise MessageError("message: expected a map")
    d: dict[object, object] = obj
    match _msg_type(d):
        case MsgType.PING:
            return Ping(seq=_int(d, "q"), target=_str(d, "n"), source=_nonempty(d, "s"))
        case MsgType.ACK:
            return Ack(seq=_int(d, "q"), source=_nonempty(d, "s"))
        case MsgType.PING_REQ:
            return PingReq(
                seq=_int(d, "q"),
                target=_nonempty(d, "n"),
                addr=_ip(d, "a"),
                port=_int(d, "p", 65535),
                source=_nonempty(d, "s"),
            )
        case MsgType.ALIVE:
            return Alive(
                name=_nonempty(d, "n"),
                addr=_ip(d, "a"),
                port=_int(d, "p", 65535),
                inc=_int(d, "i"),
                tags=_tag_map(d, "g"),
            )
        case MsgType.SUSPECT:
            return Suspect(name=_nonempty(d, "n"), inc=_int(d, "i"), source=_nonempty(d, "s"))
        case MsgType.DEAD:
            return Dead(name=_nonempty(d, "n"), inc=_int(d, "i"), source=_nonempty(d, "s"))
        case MsgType.INTENT:
            return Intent(name=_nonempty(d, "n"), inc=_int(d, "i"))
        case MsgType.FORCE_LEAVE:
            return ForceLeave(name=_nonempty(d, "n"), inc=_int(d, "i"), prune=_bool(d, "x"))
        case MsgType.PUSH_PULL:
            raise MessageError("push-pull is only valid over tcp")


def decode_message(data: bytes) -> Message:
    """Decode one encoded message (the inverse of :func:`encode_message`)."""
    return _from_wire(_unpack(data))


def decode_packet(data: bytes) -> list[Message]:
    """Decode a UDP packet payload. Raises :class:`MessageError` if any part is invalid."""
    obj = _unpack(data)
    if not isinstance(obj, list) or not obj:
        raise MessageError("packet: expected a non-empty array of messages")
    if len(obj) > MAX_MESSAGES_PER_PACKET:
        raise MessageError(f"packet: more than {MAX_MESSAGES_PER_PACKET} messages")
    return [_from_wire(item) for item in obj]


def _node_state(obj: object) -> NodeState:
    if not isinstance(obj, dict):
        raise MessageError("push-pull state: expected a map")
    d: dict[object, object] = obj
    state = _str(d, "st")
    if state not in _STATES:
        raise MessageError(f"push-pull state: unknown state {state!r}")
    return NodeState(
        name=_nonempty(d, "n"),
        addr=_ip(d, "a"),
        port=_int(d, "p", 65535),
        inc=_int(d, "i"),
        tags=_tag_map(d, "g"),
        state=state,
        leaving=_bool(d, "l"),
    )


def decode_push_pull(data: bytes) -> PushPull:
    obj = _unpack(data)
    if not isinstance(obj, dict):
        raise MessageError("push-pull: expected a map")
    d: dict[object, object] = obj
    if _msg_type(d) is not MsgType.PUSH_PULL:
        raise MessageError("push-pull: wrong message type")
    raw_states = d.get("m")
    if not isinstance(raw_states, list) or len(raw_states) > MAX_PUSH_PULL_STATES:
        raise MessageError("push-pull: field 'm': expected an array of states")
    return PushPull(
        join=_bool(d, "j"),
        source=_nonempty(d, "s"),
        states=[_node_state(s) for s in raw_states],
    )

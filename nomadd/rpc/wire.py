"""Wire format of the internal RPC: msgpack of the codec's wire form; errors as ``{kind, code, message}``.

A request body is ``to_wire(request)``; a reply is ``{"ok": to_wire(reply)}`` or
``{"error": {"kind", "code", "message"}}``, rebuilt on the caller's side into the same
:class:`~nomadd.structs.errors.RPCError` subclass.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgpack  # type: ignore[import-untyped]

from nomadd.structs.codec import from_wire_checked, to_wire
from nomadd.structs.errors import RPCError, ValidationError, rpc_error_from

__all__ = [
    "MSGPACK_CONTENT_TYPE",
    "decode",
    "decode_request",
    "encode",
    "encode_request",
    "error_reply",
    "ok_reply",
    "parse_reply",
]

T = TypeVar("T")

MSGPACK_CONTENT_TYPE = "application/msgpack"


def encode(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def decode(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def encode_request(request: object) -> bytes:
    return encode(to_wire(request))


def decode_request(cls: type[T], data: bytes) -> T:
    """The typed request in an RPC body; every field is type-checked (the caller is untrusted).

    Raises :class:`ValidationError` (400) naming the bad field.
    """
    try:
        raw = decode(data) if data else {}
    except Exception as err:
        raise ValidationError(f"malformed rpc request: {err}") from err
    if not isinstance(raw, dict):
        raise ValidationError("malformed rpc request: not a map")
    return from_wire_checked(cls, raw)


def ok_reply(reply: object) -> bytes:
    return encode({"ok": to_wire(reply)})


def error_reply(err: RPCError) -> bytes:
    return encode({"error": {"kind": type(err).__name__, "code": err.code, "message": err.message}})


def parse_reply(cls: type[T], data: bytes) -> T:
    """The typed reply in a reply body, or raise the :class:`RPCError` it carries."""
    try:
        reply = decode(data)
    except Exception as err:
        raise RPCError(f"malformed rpc reply: {err}") from err
    if not isinstance(reply, dict):
        raise RPCError("malformed rpc reply: not a map")
    if "error" in reply:
        e = reply["error"]
        if not isinstance(e, dict):
            raise RPCError("malformed rpc reply: error is not a map")
        raise rpc_error_from(str(e.get("kind", "")), int(e.get("code", 500)), str(e.get("message")))
    ok = reply.get("ok")
    if not isinstance(ok, dict):
        raise RPCError("malformed rpc reply: no result")
    try:
        return from_wire_checked(cls, ok)
    except ValidationError as err:
        raise RPCError(f"malformed rpc reply: {err.message}") from err

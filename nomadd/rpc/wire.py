"""Wire format of the internal RPC: msgpack maps; errors as ``{kind, code, message}``."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]

from nomadd.structs.errors import RPCError, rpc_error_from

__all__ = [
    "FORWARDED_HEADER",
    "MSGPACK_CONTENT_TYPE",
    "decode",
    "encode",
    "error_reply",
    "ok_reply",
    "parse_reply",
]

MSGPACK_CONTENT_TYPE = "application/msgpack"
# Set on a request one server forwards to another: the receiver must not forward again.
FORWARDED_HEADER = "X-Nomadd-Forwarded"


def encode(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def decode(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def ok_reply(result: Any) -> bytes:
    return encode({"ok": result})


def error_reply(err: RPCError) -> bytes:
    return encode({"error": {"kind": type(err).__name__, "code": err.code, "message": err.message}})


def parse_reply(data: bytes) -> Any:
    """The result of a reply, or raise the :class:`RPCError` it carries."""
    try:
        reply = decode(data)
    except Exception as err:
        raise RPCError(f"malformed rpc reply: {err}") from err
    if not isinstance(reply, dict):
        raise RPCError("malformed rpc reply: not a map")
    if "error" in reply:
        e = reply["error"]
        raise rpc_error_from(str(e.get("kind", "")), int(e.get("code", 500)), str(e.get("message")))
    return reply.get("ok")

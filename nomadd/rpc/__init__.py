"""The internal RPC between agents: ``POST /v1/internal/<Endpoint.Method>`` on the HTTP port.

Requests and replies are the typed structs of :mod:`nomadd.structs.requests`, in the codec's
wire form (msgpack, :mod:`nomadd.rpc.wire`); a reply is ``{"ok": reply}`` or
``{"error": {"kind", "code", "message"}}``, rebuilt on the caller's side into the same
:class:`nomadd.structs.errors.RPCError` subclass. Servers forward writes (and non-stale reads)
to the leader through it, with the envelope's ``forwarded`` set; the client agent calls
``Node.*`` through it.

API::

    registry = RPCRegistry()                        # a server's method table
    registry.register(STATUS_PEERS, handler, kind="local"|"read"|"write")
    rpc = RPCClient()                               # one aiohttp session per process
    reply = await rpc.call("10.0.0.1:4646", STATUS_PEERS, StatusRequest(), timeout=5.0)
    await rpc.close()
"""

from __future__ import annotations

from nomadd.rpc.client import RPCClient
from nomadd.rpc.registry import MethodKind, RPCMethod, RPCRegistry
from nomadd.rpc.wire import (
    MSGPACK_CONTENT_TYPE,
    decode,
    decode_request,
    encode,
    encode_request,
    error_reply,
    ok_reply,
    parse_reply,
)

__all__ = [
    "MSGPACK_CONTENT_TYPE",
    "MethodKind",
    "RPCClient",
    "RPCMethod",
    "RPCRegistry",
    "decode",
    "decode_request",
    "encode",
    "encode_request",
    "error_reply",
    "ok_reply",
    "parse_reply",
]

"""The internal RPC between agents: ``POST /v1/internal/<Endpoint.Method>`` on the HTTP port.

Bodies are msgpack maps (:mod:`nomadd.rpc.wire`): a request is the argument map; a reply is
``{"ok": result}`` or ``{"error": {"kind", "code", "message"}}``, rebuilt on the caller's side
into the same :class:`nomadd.structs.errors.RPCError` subclass. Servers forward writes (and
non-stale reads) to the leader through it; the client agent calls ``Node.*`` through it.

API::

    registry = RPCRegistry()                       # a server's method table
    registry.register("Status.Peers", handler, kind="local"|"read"|"write")
    rpc = RPCClient()                              # one aiohttp session per process
    await rpc.call("10.0.0.1:4646", "Status.Peers", {}, timeout=5.0) -> result
    await rpc.close()
"""

from __future__ import annotations

from nomadd.rpc.client import RPCClient
from nomadd.rpc.registry import MethodKind, RPCMethod, RPCRegistry
from nomadd.rpc.wire import (
    FORWARDED_HEADER,
    MSGPACK_CONTENT_TYPE,
    decode,
    encode,
    error_reply,
    ok_reply,
    parse_reply,
)

__all__ = [
    "FORWARDED_HEADER",
    "MSGPACK_CONTENT_TYPE",
    "MethodKind",
    "RPCClient",
    "RPCMethod",
    "RPCRegistry",
    "decode",
    "encode",
    "error_reply",
    "ok_reply",
    "parse_reply",
]

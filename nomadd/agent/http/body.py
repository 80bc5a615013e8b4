"""Reading a request's JSON body, checked before parsing: charset (UTF-8 only, else 415), size
(a caller's limit: 413 naming it) and nesting depth (400), so ``json.loads`` never meets a
100,000-deep body, a bogus charset or NaN. Used by every handler and by the ACL check (which
reads the namespace out of some bodies before the handler runs).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from typing import Any

from aiohttp import web

from nomadd.structs.errors import RequestTooLargeError, RPCError, ValidationError

__all__ = ["MAX_JSON_DEPTH", "read_body", "read_json"]

MAX_JSON_DEPTH = 256  # nesting levels of a request body; deeper: 400 before parsing
_OFFLOOP_BYTES = 256 * 1024  # bodies larger than this are checked and parsed in a thread
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``raw`` nests arrays/objects deeper than ``limit`` (brackets inside strings don't
    count). Runs before ``json.loads`` so a 100,000-deep body never reaches its recursion."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for b in _JSON_STRING.sub(b'""', raw).translate(None, _NOT_BRACKETS):
        if b in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _reject_constant(name: str) -> object:
    raise ValueError(f"invalid number {name}")


# Built once: ``json.loads(raw, parse_constant=...)`` builds a decoder (and its scanner) per
# call, which was half the cost of parsing a job register's body.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(raw: bytes) -> object:
    if _json_too_deep(raw):
        raise ValidationError(f"Failed to parse request body: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        # what json.loads does with bytes: detect UTF-8/16/32, then decode
        return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise ValidationError(f"Failed to parse request body: {err}") from None


async def read_json(
    req: web.Request, *, max_bytes: int | None = None, what: str = "request body", limit_name: str = ""
) -> object:
    """The request's JSON body, checked before parsing: charset (UTF-8 only, else 415), size
    (``max_bytes``: 413 naming the limit) and nesting depth (400)."""
    charset = req.charset
    if charset is not None:
        try:
            name = codecs.lookup(charset).name
        except LookupError:
            name = ""
        if name not in ("utf-8", "ascii"):
            raise RPCError(f"unsupported charset {charset[:64]!r}: JSON bodies must be UTF-8", code=415)
    key = f" ({limit_name})" if limit_name else ""
    if max_bytes is not None and (req.content_length or 0) > max_bytes:
        raise RequestTooLargeError(
            f"{what} of {req.content_length} bytes is larger than the limit of {max_bytes}{key}"
        )
    raw = await req.read()
    if max_bytes is not None and len(raw) > max_bytes:
        raise RequestTooLargeError(f"{what} of {len(raw)} bytes is larger than the limit of {max_bytes}{key}")
    if len(raw) > _OFFLOOP_BYTES:
        return await asyncio.to_thread(_parse_json, raw)
    return _parse_json(raw)


async def read_body(
    req: web.Request,
    *,
    optional: bool = False,
    max_bytes: int | None = None,
    what: str = "request body",
    limit_name: str = "",
) -> dict[str, Any]:
    """The request's JSON object body (400 when it is missing or not an object; ``optional``:
    ``{}`` when there is none). See :func:`read_json` for the checks."""
    if not req.body_exists:  # (not can_read_body: the ACL check may have read the body already)
        if optional:
            return {}
        raise ValidationError("Request body is empty")
    body = await read_json(req, max_bytes=max_bytes, what=what, limit_name=limit_name)
    if not isinstance(body, dict):
        raise ValidationError("Request body must be a JSON object")
    return body

"""Time values as Nomad's API shows them.

Nomad's ``time.Time`` fields (node events, task ``StartedAt``, drain deadlines) are RFC 3339
strings in its JSON, so the structs hold them as such strings; ``int`` fields named ``*_time`` or
``*Index`` are Unix nanoseconds or Raft indexes. Durations are ``int`` nanoseconds everywhere
(``Interval``, ``Delay``, ``KillTimeout``...), as in Nomad's API. Timestamps are always made by
the caller (never inside the FSM), so these helpers take the time as an argument.
"""

from __future__ import annotations

import datetime as _dt

__all__ = [
    "NS_PER_HOUR",
    "NS_PER_MINUTE",
    "NS_PER_MS",
    "NS_PER_S",
    "ZERO_TIME",
    "format_time",
    "parse_time",
]

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_S
NS_PER_HOUR = 60 * NS_PER_MINUTE

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero ``time.Time`` as its JSON encoder prints it (an unset time)."""


def format_time(unix_ns: int) -> str:
    """RFC 3339 (UTC, nanosecond precision trimmed like Go's RFC3339Nano) of Unix nanoseconds."""
    if unix_ns <= 0:
        return ZERO_TIME
    secs, frac = divmod(unix_ns, NS_PER_S)
    base = _dt.datetime.fromtimestamp(secs, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


def parse_time(text: str) -> int:
    """Unix nanoseconds of an RFC 3339 string made by :func:`format_time` (0 for the zero time)."""
    if not text or text == ZERO_TIME:
        return 0
    body = text.removesuffix("Z")
    offset = "+00:00"
    if len(body) > 6 and body[-6] in "+-" and body[-3] == ":":
        body, offset = body[:-6], body[-6:]
    frac_ns = 0
    if "." in body:
        body, frac = body.split(".", 1)
        frac_ns = int((frac + "000000000")[:9])
    stamp = _dt.datetime.fromisoformat(body + offset)
    return int(stamp.timestamp()) * NS_PER_S + frac_ns

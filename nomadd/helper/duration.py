"""Go-style duration strings ("10s", "1m30s", "500ms", "24h"): the one parser in nomadd.

Go's ``time.ParseDuration`` rules: an optional sign, then one or more ``<number><unit>`` parts
(units ns, us/µs, ms, s, m, h; the number may have a fraction); a bare ``"0"`` is zero. The value
is kept in integer nanoseconds, as Go does, so ``parse_duration_ns`` is exact.
"""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration", "parse_duration_ns"]

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")


def parse_duration_ns(text: str) -> int:
    """Parse a Go ``time.ParseDuration`` string into integer nanoseconds.

    Raises ValueError with Go's wording (``time: invalid duration "x"``) for anything else.
    """
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None or not (m.group(1) or m.group(2)):
            if re.fullmatch(r"[\d.]+", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        unit = _UNIT_NS[m.group(3)]
        whole, frac = m.group(1) or "0", m.group(2) or ""
        total += int(whole) * unit + (int(frac) * unit // 10 ** len(frac) if frac else 0)
        pos = m.end()
    return sign * total


def parse_duration(text: str) -> float:
    """Parse a Go ``time.ParseDuration`` string into float seconds (ValueError as above)."""
    return parse_duration_ns(text) / 1e9


def format_duration(seconds: float) -> str:
    """Format seconds the way Go prints a ``time.Duration`` ("10s", "5m0s", "1.5s", "200ms")."""
    if seconds == 0:
        return "0s"
    neg = seconds < 0
    s = abs(seconds)
    if s < 1:
        out = f"{s * 1000:g}ms"
    else:
        h, rem = divmod(s, 3600)
        m, sec = divmod(rem, 60)
        out = ""
        if h:
            out += f"{int(h)}h"
        if h or m:
            out += f"{int(m)}m"
        out += f"{round(sec, 9):g}s"
    return "-" + out if neg else out

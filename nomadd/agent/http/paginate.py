"""``?filter=``, ``?per_page=``, ``?next_token=`` and ``?reverse=`` on the lists Nomad paginates.

One place for every list: ``Router.wrap`` hands the list a route returns (after the ACL filter
left out what the token may not read) to :func:`page`. The list is ordered by the route's
:class:`ListOrder` — the fields Nomad's paginator builds its tokens from, e.g. ``CreateIndex.ID``
for allocations, ``Namespace.ID`` for jobs — then filtered (``filter.py``), then cut at
``next_token`` and ``per_page``; when more remain, the next item's token is returned for the
``X-Nomad-NextToken`` header, as Nomad does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nomadd.agent.http.filter import parse_filter
from nomadd.agent.http.params import query_flag
from nomadd.structs.errors import ValidationError

__all__ = ["LISTS", "ListOrder", "page"]

MAX_PER_PAGE = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ListOrder:
    """The API fields (first one optionally numeric) that order a list and make its tokens."""

    fields: tuple[str, ...]
    numeric_first: bool = False

    def key(self, item: Mapping[str, Any]) -> tuple[Any, ...]:
        values = tuple(item.get(f) for f in self.fields)
        first = values[0]
        if self.numeric_first:
            return (first if isinstance(first, int) else 0, *map(_text, values[1:]))
        return tuple(map(_text, values))

    def token(self, item: Mapping[str, Any]) -> str:
        return ".".join(str(v) for v in self.key(item))

    def parse_token(self, token: str) -> tuple[Any, ...]:
        parts = token.split(".", len(self.fields) - 1)
        if len(parts) != len(self.fields):
            raise ValidationError(f"invalid next_token {token[:80]!r}: expected {'.'.join(self.fields)}")
        if self.numeric_first:
            if not parts[0].isdigit():
                raise ValidationError(f"invalid next_token {token[:80]!r}: {self.fields[0]} is not a number")
            return (int(parts[0]), *parts[1:])
        return tuple(parts)


def _text(value: object) -> str:
    return "" if value is None else str(value)


_CREATE_ID = ListOrder(("CreateIndex", "ID"), numeric_first=True)

# The lists Nomad paginates and filters, by (method, route pattern).
LISTS: dict[tuple[str, str], ListOrder] = {
    ("GET", "/v1/jobs"): ListOrder(("Namespace", "ID")),
    ("GET", "/v1/allocations"): _CREATE_ID,
    ("GET", "/v1/evaluations"): _CREATE_ID,
    ("GET", "/v1/deployments"): _CREATE_ID,
    ("GET", "/v1/nodes"): ListOrder(("ID",)),
    ("GET", "/v1/vars"): ListOrder(("Namespace", "Path")),
    ("GET", "/v1/acl/tokens"): ListOrder(("CreateIndex", "AccessorID"), numeric_first=True),
}


def page(order: ListOrder, query: Mapping[str, str], items: list[Any]) -> tuple[list[Any], str]:
    """The page of ``items`` the query asks for, and the next page's token ("" at the end)."""
    expr = parse_filter(query["filter"]) if query.get("filter") else None
    per_page = 0
    if "per_page" in query:
        raw = query["per_page"]
        if not raw.isdigit() or int(raw) > MAX_PER_PAGE:
            raise ValidationError(f"Failed to parse per_page: {raw[:32]!r} is not a positive integer")
        per_page = int(raw)
    reverse = query_flag(query, "reverse")
    start = order.parse_token(query["next_token"]) if query.get("next_token") else None
    rows = sorted(((order.key(i), i) for i in items if isinstance(i, Mapping)), key=lambda r: r[0])
    if reverse:
        rows.reverse()
    out: list[Any] = []
    for key, item in rows:
        if start is not None and (key > start if reverse else key < start):
            continue
        if expr is not None and not expr(item):
            continue
        if per_page and len(out) == per_page:
            return out, order.token(item)
        out.append(item)
    return out, ""

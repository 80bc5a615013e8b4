"""``Search.*`` RPCs (Nomad's search_endpoint.go): prefix and fuzzy search over the state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nomadd.structs.requests import Envelope, Method, QueryMeta

__all__ = [
    "SEARCH_FUZZY",
    "SEARCH_PREFIX",
    "FuzzyMatch",
    "FuzzySearchReply",
    "FuzzySearchRequest",
    "PrefixSearchReply",
    "PrefixSearchRequest",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixSearchRequest(Envelope):
    """IDs (names, paths) of ``context`` (``all``: every context) that start with ``prefix``."""

    prefix: str = ""
    context: str = "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class FuzzySearchRequest(Envelope):
    """Names that contain ``text`` (case-insensitive), in ``context`` (``all``: every context)."""

    text: str = ""
    context: str = "all"


@dataclass(frozen=True, slots=True, kw_only=True)
class FuzzyMatch:
    """``id``: the name that matched; ``scope``: the IDs of its parents, namespace first."""

    id: str
    scope: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixSearchReply:
    meta: QueryMeta
    matches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    truncations: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FuzzySearchReply:
    meta: QueryMeta
    matches: Mapping[str, tuple[FuzzyMatch, ...]] = field(default_factory=dict)
    truncations: Mapping[str, bool] = field(default_factory=dict)


SEARCH_PREFIX = Method("Search.PrefixSearch", PrefixSearchRequest, PrefixSearchReply)
SEARCH_FUZZY = Method("Search.FuzzySearch", FuzzySearchRequest, FuzzySearchReply)

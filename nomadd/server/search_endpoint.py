"""``Search.PrefixSearch`` and ``Search.FuzzySearch`` (Nomad's search_endpoint.go).

Prefix search answers, per context, up to :data:`TRUNCATE_LIMIT` IDs (names for node pools and
namespaces, paths for variables) that start with the prefix, and whether more were left out.
Fuzzy search answers names that contain the text, case-insensitively, best (earliest) match
first; a job also matches by its groups, tasks and raw_exec/exec commands, each with the
``Scope`` of its parents. Both show only what the caller's token may read, and refuse (403) a
context the token can read nothing of, as Nomad does. Contexts Nomad has and nomadd does not
(deployments, CSI plugins and volumes, scaling policies, host volumes) answer no matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from nomadd.rpc import RPCRegistry
from nomadd.server.acl.acl import ACL
from nomadd.server.context import ServerContext
from nomadd.server.state import (
    store_allocs,
    store_evals,
    store_jobs,
    store_namespaces,
    store_nodes,
    store_variables,
)
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.errors import PermissionDeniedError, ValidationError
from nomadd.structs.requests.search import (
    SEARCH_FUZZY,
    SEARCH_PREFIX,
    FuzzyMatch,
    FuzzySearchReply,
    FuzzySearchRequest,
    PrefixSearchReply,
    PrefixSearchRequest,
)

__all__ = ["CONTEXTS", "FUZZY_LIMIT_RESULTS", "FUZZY_MIN_TERM_LENGTH", "TRUNCATE_LIMIT", "SearchEndpoint"]

TRUNCATE_LIMIT = 20  # Nomad's truncateLimit: prefix matches per context
FUZZY_LIMIT_RESULTS = 100  # Nomad's search.limit_results default
FUZZY_MIN_TERM_LENGTH = 2  # Nomad's search.min_term_length default
_EMPTY = ("deployment", "plugins", "volumes", "scaling_policy", "host_volumes")
CONTEXTS = ("allocs", "jobs", "nodes", "node_pools", "evals", "vars", "namespaces", *_EMPTY)
_TABLES = (
    store_allocs.TABLE,
    store_jobs.TABLE,
    store_nodes.TABLE,
    store_namespaces.NODE_POOLS_TABLE,
    store_evals.TABLE,
    store_variables.TABLE,
    store_namespaces.NAMESPACES_TABLE,
)


@dataclass(frozen=True, slots=True)
class _Item:
    """One searchable object: the ID a prefix search matches, the name a fuzzy search matches."""

    id: str
    name: str
    scope: tuple[str, ...]
    obj: object = None


def _in_ns(namespace: str, item_ns: str) -> bool:
    return namespace == "*" or namespace == item_ns


def _items(snap: StateSnapshot, context: str, namespace: str, acl: ACL) -> Iterable[_Item]:
    """The objects of ``context`` in ``namespace`` the token may read, sorted by ID."""
    if context == "jobs":
        for job in store_jobs.list_jobs(snap, namespace):
            if acl.allow_ns_op(job.namespace, "read-job"):
                yield _Item(job.id, job.name, (job.namespace, job.id), job)
    elif context == "allocs":
        for alloc in sorted(store_allocs.list_allocs(snap, namespace), key=lambda a: a.id):
            if acl.allow_ns_op(alloc.namespace, "read-job"):
                yield _Item(alloc.id, alloc.name, (alloc.namespace, alloc.id))
    elif context == "evals":
        for ev in sorted(store_evals.list_evals(snap, namespace), key=lambda e: e.id):
            if acl.allow_ns_op(ev.namespace, "read-job"):
                yield _Item(ev.id, ev.id, (ev.namespace, ev.id))
    elif context == "nodes":
        if acl.allow_node_read():
            for node in store_nodes.list_nodes(snap):
                yield _Item(node.id, node.name, (node.id,))
    elif context == "node_pools":
        if acl.allow_node_read():
            for pool in store_namespaces.list_pools(snap):
                yield _Item(pool.name, pool.name, (pool.name,))
    elif context == "namespaces":
        for ns in store_namespaces.list_namespaces(snap):
            if acl.allow_namespace(ns.name):
                yield _Item(ns.name, ns.name, ())
    elif context == "vars":
        for var in store_variables.list_prefix(snap, namespace, ""):
            if acl.allow_variable_op(var.namespace, var.path, "list"):
                yield _Item(var.path, var.path, (var.namespace, var.path))


def _allowed(acl: ACL, namespace: str, context: str) -> bool:
    """Whether the token can read anything of ``context`` (Nomad's sufficientSearchPerms)."""
    if acl.management:
        return True
    if context in ("nodes", "node_pools"):
        return acl.allow_node_read()
    if context == "namespaces":
        return namespace == "*" or acl.allow_namespace(namespace)
    if context in ("allocs", "evals", "jobs", "deployment", "scaling_policy"):
        return acl.allow_ns_any("read-job") if namespace == "*" else acl.allow_ns_op(namespace, "read-job")
    if context == "vars":
        return acl.allow_variable_list(namespace)
    if context == "plugins":
        return acl.allow_plugin_read()
    return True


def _contexts(acl: ACL, namespace: str, context: str) -> tuple[str, ...]:
    if context == "all":
        return tuple(c for c in CONTEXTS if _allowed(acl, namespace, c))
    if context not in CONTEXTS:
        raise ValidationError(
            f"context must be one of {list(CONTEXTS)} or 'all' for all contexts; got {context!r}"
        )
    if not _allowed(acl, namespace, context):
        raise PermissionDeniedError("Permission denied")
    return (context,)


def _job_matches(item: _Item, text: str) -> Iterable[tuple[str, int, FuzzyMatch]]:
    """A job's fuzzy matches: its name, groups, tasks and commands (Nomad's fuzzyMatchesJob)."""
    job = item.obj
    assert job is not None
    ns, job_id = item.scope
    at = item.name.lower().find(text)
    if at >= 0:
        yield "jobs", at, FuzzyMatch(id=item.name, scope=(ns, job_id))
    for group in job.task_groups:  # type: ignore[attr-defined]
        at = group.name.lower().find(text)
        if at >= 0:
            yield "groups", at, FuzzyMatch(id=group.name, scope=(ns, job_id))
        for task in group.tasks:
            at = task.name.lower().find(text)
            if at >= 0:
                yield "tasks", at, FuzzyMatch(id=task.name, scope=(ns, job_id, group.name))
            command = task.config.get("command") if task.driver in ("exec", "raw_exec") else None
            at = command.lower().find(text) if isinstance(command, str) else -1
            if at >= 0 and isinstance(command, str):
                yield "commands", at, FuzzyMatch(id=command, scope=(ns, job_id, group.name, task.name))


class SearchEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(SEARCH_PREFIX, self.prefix_search, kind="read")
        registry.register(SEARCH_FUZZY, self.fuzzy_search, kind="read")

    async def prefix_search(self, req: PrefixSearchRequest) -> PrefixSearchReply:
        acl = await self._ctx.acl.resolve(req.auth_token)
        contexts = _contexts(acl, req.namespace or "default", req.context or "all")

        def fn(snap: StateSnapshot) -> tuple[dict[str, tuple[str, ...]], dict[str, bool]]:
            matches: dict[str, tuple[str, ...]] = {}
            truncations: dict[str, bool] = {}
            for context in contexts:
                found: list[str] = []
                truncated = False
                for item in _items(snap, context, req.namespace or "default", acl):
                    if item.id.startswith(req.prefix):
                        if len(found) == TRUNCATE_LIMIT:
                            truncated = True
                            break
                        found.append(item.id)
                matches[context] = tuple(found)
                truncations[context] = truncated
            return matches, truncations

        (matches, truncations), meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return PrefixSearchReply(meta=meta, matches=matches, truncations=truncations)

    async def fuzzy_search(self, req: FuzzySearchRequest) -> FuzzySearchReply:
        acl = await self._ctx.acl.resolve(req.auth_token)
        if len(req.text) < FUZZY_MIN_TERM_LENGTH:
            raise ValidationError(
                f"fuzzy search query must be at least {FUZZY_MIN_TERM_LENGTH} characters, got {len(req.text)}"
            )
        contexts = _contexts(acl, req.namespace or "default", req.context or "all")
        text = req.text.lower()

        def fn(snap: StateSnapshot) -> tuple[dict[str, tuple[FuzzyMatch, ...]], dict[str, bool]]:
            scored: dict[str, list[tuple[int, FuzzyMatch]]] = {}
            for context in contexts:
                for item in _items(snap, context, req.namespace or "default", acl):
                    for ctx, at, match in _fuzzy(context, item, text):
                        scored.setdefault(ctx, []).append((at, match))
            return _ranked(scored)

        (matches, truncations), meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return FuzzySearchReply(meta=meta, matches=matches, truncations=truncations)


def _fuzzy(context: str, item: _Item, text: str) -> Iterable[tuple[str, int, FuzzyMatch]]:
    if context == "jobs":
        yield from _job_matches(item, text)
        return
    if context == "evals":  # UUIDs: prefix only (Nomad)
        if item.id.startswith(text):
            yield context, 0, FuzzyMatch(id=item.id)
        return
    at = item.name.lower().find(text)
    if at >= 0:
        yield context, at, FuzzyMatch(id=item.name, scope=item.scope)


def _ranked(
    scored: Mapping[str, list[tuple[int, FuzzyMatch]]],
) -> tuple[dict[str, tuple[FuzzyMatch, ...]], dict[str, bool]]:
    key: Callable[[tuple[int, FuzzyMatch]], tuple[int, str, tuple[str, ...]]] = lambda s: (  # noqa: E731
        s[0],
        s[1].id,
        s[1].scope,
    )
    matches: dict[str, tuple[FuzzyMatch, ...]] = {}
    truncations: dict[str, bool] = {}
    for context, found in scored.items():
        ranked = sorted(found, key=key)
        matches[context] = tuple(m for _, m in ranked[:FUZZY_LIMIT_RESULTS])
        truncations[context] = len(ranked) > FUZZY_LIMIT_RESULTS
    return matches, truncations

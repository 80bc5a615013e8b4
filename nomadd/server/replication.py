"""Replication from the authoritative region (Nomad's ``replicateACLPolicies``,
``replicateACLRoles``, ``replicateACLTokens``, ``replicateNamespaces`` and
``replicateNodePools`` in ``nomad/leader.go``).

With ``server.authoritative_region`` naming another region, this region's leader reads, every
``acl.replication_interval`` seconds and with ``acl.replication_token``, the authoritative
region's namespaces, node pools (those written as objects; the built-in ones are the same
everywhere), ACL policies, roles and *global* tokens (stale reads: any of its servers answers),
and commits what differs through its own Raft with the ordinary entries (upserts keep the
authoritative accessor and secret IDs; objects gone there are deleted here). While the
authoritative region cannot be reached nothing changes here: tokens keep being checked against
the last copy, and the next successful round catches up.

Writes of replicated objects made in a non-authoritative region go to the authoritative region
(:func:`authoritative_route`, called by ``Server.rpc``), as Nomad forwards them; local tokens
(``Global = false``) stay in the region they were made in.

:data:`REPLICATED_WRITES` lists the RPCs whose objects replicate; a new replicated kind adds
its write methods there and a :class:`Kind` to :data:`KINDS`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nomadd.server.context import ServerContext
from nomadd.server.federation import Regions
from nomadd.server.periodic import PeriodicLeaderTask
from nomadd.server.state import store_acl, store_namespaces
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.messages import MessageType
from nomadd.structs.namespace import BUILTIN_POOLS
from nomadd.structs.requests import Method, Req
from nomadd.structs.requests.acl import (
    ACL_BOOTSTRAP,
    ACL_DELETE_POLICIES,
    ACL_DELETE_ROLES,
    ACL_DELETE_TOKENS,
    ACL_LIST_POLICIES,
    ACL_LIST_ROLES,
    ACL_LIST_TOKENS,
    ACL_UPSERT_POLICIES,
    ACL_UPSERT_ROLES,
    ACL_UPSERT_TOKENS,
    ACLDeleteEntry,
    ACLDeleteRequest,
    ACLPoliciesEntry,
    ACLRolesEntry,
    ACLTokensEntry,
    ACLUpsertTokensRequest,
)
from nomadd.structs.requests.namespace import (
    NAMESPACE_DELETE,
    NAMESPACE_LIST,
    NAMESPACE_UPSERT,
    NODE_POOL_DELETE,
    NODE_POOL_LIST,
    NODE_POOL_UPSERT,
    NamedDeleteEntry,
    NamespaceUpsertEntry,
    NodePoolUpsertEntry,
)

if TYPE_CHECKING:
    from nomadd.server.config import ServerConfig

logger = logging.getLogger(__name__)

__all__ = ["KINDS", "REPLICATED_WRITES", "Kind", "Replicator", "authoritative_route"]

# Writes of replicated objects: run in the authoritative region (Nomad forwards them there).
REPLICATED_WRITES = frozenset(
    m.name
    for m in (
        ACL_BOOTSTRAP,
        ACL_UPSERT_POLICIES,
        ACL_DELETE_POLICIES,
        ACL_UPSERT_ROLES,
        ACL_DELETE_ROLES,
        NAMESPACE_UPSERT,
        NAMESPACE_DELETE,
        NODE_POOL_UPSERT,
        NODE_POOL_DELETE,
    )
)
# Token writes go there only for global tokens.
_TOKEN_WRITES = frozenset(m.name for m in (ACL_UPSERT_TOKENS, ACL_DELETE_TOKENS))

_BOOKKEEPING = ("create_index", "modify_index")


def _same(a: object, b: object) -> bool:
    """Equal apart from the Raft indexes, which differ between regions."""
    fa = {f.name: getattr(a, f.name) for f in dataclasses.fields(a) if f.name not in _BOOKKEEPING}  # type: ignore[arg-type]
    fb = {f.name: getattr(b, f.name) for f in dataclasses.fields(b) if f.name not in _BOOKKEEPING}  # type: ignore[arg-type]
    return fa == fb


def _is_global_token_write(req: Req, snap: StateSnapshot) -> bool:
    if isinstance(req, ACLUpsertTokensRequest):
        for t in req.tokens:
            current = store_acl.get_token(snap, t.accessor_id) if t.accessor_id else None
            if current.global_ if current is not None else t.global_:
                return True
        return False
    if isinstance(req, ACLDeleteRequest):
        found = (store_acl.get_token(snap, k) for k in req.keys)
        return any(token is not None and token.global_ for token in found)
    return False


def authoritative_route(
    config: ServerConfig, method: Method[Any, Any], req: Req, snapshot: Callable[[], StateSnapshot]
) -> Req:
    """``req`` aimed at the authoritative region when it writes a replicated object here."""
    auth = config.authoritative_region
    if not auth or auth == config.region or req.region not in ("", config.region):
        return req
    name = method.name
    if name in REPLICATED_WRITES or (name in _TOKEN_WRITES and _is_global_token_write(req, snapshot())):
        return dataclasses.replace(req, region=auth)
    return req


@dataclass(frozen=True, slots=True, kw_only=True)
class Kind:
    """One replicated object kind: how to read it there and here, and write it here."""

    name: str
    list_method: Method[Any, Any]  # its request takes the envelope fields alone
    remote: Callable[[Any], Sequence[Any]]  # the objects in the list reply
    local: Callable[[StateSnapshot], Sequence[Any]]
    key: Callable[[Any], str]
    upsert: Callable[[tuple[Any, ...]], tuple[int, object]]  # (message type, entry)
    delete: Callable[[tuple[str, ...]], tuple[int, object]]
    acl: bool = True  # an ACL object: replicated only with ACLs enabled


# Applied in this order (roles name policies, tokens name both); deletes in the reverse order.
KINDS: tuple[Kind, ...] = (
    Kind(
        name="namespaces",
        acl=False,
        list_method=NAMESPACE_LIST,
        remote=lambda reply: reply.namespaces,
        local=lambda snap: store_namespaces.list_namespaces(snap),
        key=lambda ns: str(ns.name),
        upsert=lambda objs: (MessageType.NAMESPACE_UPSERT, NamespaceUpsertEntry(namespaces=objs)),
        delete=lambda keys: (MessageType.NAMESPACE_DELETE, NamedDeleteEntry(names=keys)),
    ),
    Kind(
        name="node_pools",
        acl=False,
        list_method=NODE_POOL_LIST,
        remote=lambda reply: [p for p in reply.pools if p.name not in BUILTIN_POOLS],
        local=lambda snap: list(snap.table(store_namespaces.NODE_POOLS_TABLE).values()),
        key=lambda p: str(p.name),
        upsert=lambda objs: (MessageType.NODE_POOL_UPSERT, NodePoolUpsertEntry(pools=objs)),
        delete=lambda keys: (MessageType.NODE_POOL_DELETE, NamedDeleteEntry(names=keys)),
    ),
    Kind(
        name="policies",
        list_method=ACL_LIST_POLICIES,
        remote=lambda reply: reply.policies,
        local=lambda snap: store_acl.list_policies(snap, ""),
        key=lambda p: str(p.name),
        upsert=lambda objs: (MessageType.ACL_POLICY_UPSERT, ACLPoliciesEntry(policies=objs)),
        delete=lambda keys: (MessageType.ACL_POLICY_DELETE, ACLDeleteEntry(keys=keys)),
    ),
    Kind(
        name="roles",
        list_method=ACL_LIST_ROLES,
        remote=lambda reply: reply.roles,
        local=lambda snap: store_acl.list_roles(snap, ""),
        key=lambda r: str(r.id),
        upsert=lambda objs: (MessageType.ACL_ROLE_UPSERT, ACLRolesEntry(roles=objs)),
        delete=lambda keys: (MessageType.ACL_ROLE_DELETE, ACLDeleteEntry(keys=keys)),
    ),
    Kind(
        name="tokens",
        list_method=ACL_LIST_TOKENS,
        remote=lambda reply: [t for t in reply.tokens if t.global_],
        local=lambda snap: [t for t in store_acl.list_tokens(snap, "") if t.global_],
        key=lambda t: str(t.accessor_id),
        upsert=lambda objs: (MessageType.ACL_TOKEN_UPSERT, ACLTokensEntry(tokens=objs)),
        delete=lambda keys: (MessageType.ACL_TOKEN_DELETE, ACLDeleteEntry(keys=keys)),
    ),
)


class Replicator(PeriodicLeaderTask):
    """A leader chore: replicates :data:`KINDS` every ``acl.replication_interval`` while this
    server leads a region that is not the authoritative one (not started otherwise)."""

    name = "replication"

    def __init__(self, ctx: ServerContext, regions: Regions) -> None:
        super().__init__()
        self._ctx = ctx
        self._regions = regions
        self.rounds = 0  # successful rounds (for tests and stats)

    def wanted(self) -> bool:
        cfg = self._ctx.config
        return bool(cfg.authoritative_region and cfg.authoritative_region != cfg.region)

    def _kinds(self) -> tuple[Kind, ...]:
        return tuple(k for k in KINDS if self._ctx.config.acl.enabled or not k.acl)

    def interval_s(self) -> float:
        return self._ctx.config.acl.replication_interval

    async def tick(self) -> object:
        return await self.replicate_once()

    def set_enabled(self, enabled: bool) -> None:
        if enabled and self.wanted():
            cfg = self._ctx.config
            logger.info("replication starting authoritative_region=%s", cfg.authoritative_region)
            if cfg.acl.enabled and not cfg.acl.replication_token:
                logger.warning(
                    "acl replication has no acl.replication_token: the authoritative region "
                    "will refuse it authoritative_region=%s",
                    cfg.authoritative_region,
                )
        super().set_enabled(enabled)

    async def replicate_once(self) -> dict[str, int]:
        """One round: read every kind there, then commit the differences here. Returns the
        number of objects written or deleted per kind."""
        cfg = self._ctx.config
        env = {
            "region": cfg.authoritative_region,
            "auth_token": cfg.acl.replication_token,
            "allow_stale": True,
        }
        remote = {}
        kinds = self._kinds()
        for kind in kinds:  # read everything first: a failed read changes nothing here
            reply = await self._regions.forward(kind.list_method, kind.list_method.request(**env))
            remote[kind.name] = list(kind.remote(reply))
        snap = self._ctx.store.snapshot()
        plans = []
        for kind in kinds:
            local = {kind.key(o): o for o in kind.local(snap)}
            theirs = {kind.key(o): o for o in remote[kind.name]}
            changed = tuple(o for k, o in theirs.items() if k not in local or not _same(local[k], o))
            gone = tuple(sorted(k for k in local if k not in theirs))
            plans.append((kind, changed, gone))
        counts = {}
        for kind, changed, _ in plans:
            if changed:
                await self._apply(kind.name, kind.upsert(changed))
            counts[kind.name] = len(changed)
        for kind, _, gone in reversed(plans):
            if gone:
                await self._apply(kind.name, kind.delete(gone))
            counts[kind.name] += len(gone)
        self.rounds += 1
        if any(counts.values()):
            logger.info("replication applied %s", " ".join(f"{k}={n}" for k, n in counts.items() if n))
        return counts

    async def _apply(self, kind: str, entry: tuple[int, object]) -> None:
        result, _ = await self._ctx.propose(*entry)
        if isinstance(result, str) and result:  # refused by the FSM (e.g. a namespace in use here)
            logger.warning("replication write refused kind=%s err=%s", kind, result)

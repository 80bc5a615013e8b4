"""Autopilot (Nomad's ``autopilot`` / raft-autopilot): server health, dead-server cleanup, and the
``Operator.Autopilot*`` / ``Operator.ServerHealth`` / ``Operator.TransferLeadershipToPeer`` RPCs.

The configuration lives in the replicated store (``AUTOPILOT_SET_CONFIG``, check-and-set as
Nomad's ``?cas=``); a new leader writes the agent's ``autopilot`` block there if none is stored.

On the leader, every ``HEALTH_INTERVAL_S`` :class:`Autopilot` asks each Raft peer for its own
view (``Status.AutopilotServerStats``: last index, term, time since it heard from the leader)
and applies Nomad's rule: a server is healthy when gossip sees it alive, it heard from the
leader within ``last_contact_threshold``, it is on the leader's term, and it trails the leader
by at most ``max_trailing_logs`` entries. ``StableSince`` is when that verdict last changed.

Dead-server cleanup (``cleanup_dead_servers``): a peer that gossip reports failed or left (or
no longer knows) and that has been unhealthy for ``last_contact_threshold +
server_stabilization_time`` is removed from the peer set, one per round, only when the voters
left after the removal still hold a quorum of servers that have been healthy for
``server_stabilization_time`` (a replacement counts once it is stable), never leaving fewer
such servers than ``min_quorum`` (set it to the intended cluster size and a dead server goes
only once its replacement is stable), and never more failed voters than ``(voters - 1) / 2``
at once (raft-autopilot's limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nomadd.gossip.member import MemberStatus
from nomadd.helper.supervisor import Supervisor
from nomadd.rpc import RPCRegistry
from nomadd.server.context import ServerContext
from nomadd.server.fsm.autopilot import TABLE, get_config
from nomadd.server.membership import ServerInfo
from nomadd.structs.errors import NomaddError, NotFoundError, ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import QueryMeta, WriteMeta
from nomadd.structs.requests.autopilot import (
    AUTOPILOT_GET_CONFIG,
    AUTOPILOT_SERVER_HEALTH,
    AUTOPILOT_SERVER_STATS,
    AUTOPILOT_SET_CONFIG,
    OPERATOR_TRANSFER_LEADERSHIP,
    AutopilotConfig,
    AutopilotConfigReply,
    AutopilotGetConfigRequest,
    AutopilotSetConfigEntry,
    AutopilotSetConfigReply,
    AutopilotSetConfigRequest,
    OperatorHealthReply,
    ServerHealth,
    ServerHealthRequest,
    ServerStatsReply,
    ServerStatsRequest,
    TransferLeadershipReply,
    TransferLeadershipRequest,
)

logger = logging.getLogger(__name__)

__all__ = ["HEALTH_INTERVAL_S", "STATS_TIMEOUT_S", "Autopilot", "StatsFetcher", "removable_peer"]

HEALTH_INTERVAL_S = 1.0
STATS_TIMEOUT_S = 1.0  # per server, per round

StatsFetcher = Callable[[str], Awaitable[ServerStatsReply]]  # http address -> that server's stats


@dataclass(slots=True)
class _Track:
    healthy: bool = False
    since: float = 0.0  # monotonic time the verdict last changed
    since_ns: int = 0  # the same, wall clock (StableSince)


def removable_peer(
    *,
    peers: list[str],
    dead: dict[str, float],
    stable: set[str],
    config: AutopilotConfig,
) -> str | None:
    """The dead peer to remove now, or None. ``dead``: failed peer -> seconds unhealthy;
    ``stable``: peers healthy for at least the stabilization time."""
    grace = config.last_contact_threshold_s + config.server_stabilization_time_s
    failed = [p for p in peers if p in dead]
    if not failed or len(failed) > (len(peers) - 1) // 2:
        return None
    for addr in sorted(failed, key=lambda a: -dead[a]):
        if dead[addr] < grace:
            continue
        left = [p for p in peers if p != addr]
        stable_left = sum(1 for p in left if p in stable)
        if stable_left < config.min_quorum:
            return None
        if stable_left >= len(left) // 2 + 1:
            return addr
    return None


class Autopilot:
    """Autopilot's RPCs on every server, and its health/cleanup loop on the leader."""

    def __init__(self, ctx: ServerContext, defaults: AutopilotConfig, fetch_stats: StatsFetcher) -> None:
        self._ctx = ctx
        self._defaults = defaults
        self._fetch = fetch_stats
        self._tasks = Supervisor("autopilot")
        self._task: asyncio.Task[None] | None = None
        self._tracks: dict[str, _Track] = {}
        self._health: OperatorHealthReply | None = None

    def register(self, registry: RPCRegistry) -> None:
        registry.register(AUTOPILOT_GET_CONFIG, self.get_config, kind="read")
        registry.register(AUTOPILOT_SET_CONFIG, self.set_config, kind="write")
        registry.register(AUTOPILOT_SERVER_HEALTH, self.server_health, kind="read")
        registry.register(AUTOPILOT_SERVER_STATS, self.server_stats, kind="local")
        registry.register(OPERATOR_TRANSFER_LEADERSHIP, self.transfer_leadership, kind="write")

    def config(self) -> AutopilotConfig:
        return get_config(self._ctx.store.snapshot()) or self._defaults

    # ---- RPCs --------------------------------------------------------------------------------
    async def get_config(self, req: AutopilotGetConfigRequest) -> AutopilotConfigReply:
        snap = self._ctx.store.snapshot()
        raft = self._ctx.raft
        meta = QueryMeta(
            index=snap.table_index(TABLE),
            known_leader=raft.known_leader(),
            last_contact_ms=raft.last_contact_ms(),
        )
        return AutopilotConfigReply(meta=meta, config=get_config(snap) or self._defaults)

    async def set_config(self, req: AutopilotSetConfigRequest) -> AutopilotSetConfigReply:
        c = req.config
        if c.last_contact_threshold_s <= 0 or c.server_stabilization_time_s < 0:
            raise ValidationError(
                "LastContactThreshold must be positive and ServerStabilizationTime not negative"
            )
        if c.max_trailing_logs < 0 or c.min_quorum < 0:
            raise ValidationError("MaxTrailingLogs and MinQuorum must not be negative")
        entry = AutopilotSetConfigEntry(config=c, cas=req.cas, cas_index=req.cas_index)
        result, index = await self._ctx.propose(MessageType.AUTOPILOT_SET_CONFIG, entry)
        return AutopilotSetConfigReply(meta=WriteMeta(index=index), updated=bool(result))

    async def server_stats(self, req: ServerStatsRequest) -> ServerStatsReply:
        raft = self._ctx.raft
        stats = raft.stats()
        return ServerStatsReply(
            last_index=raft.applied_index(),
            last_term=_int(stats.get("term")),
            last_contact_ms=raft.last_contact_ms(),
        )

    async def server_health(self, req: ServerHealthRequest) -> OperatorHealthReply:
        health = self._health
        if health is None or not self._ctx.raft.is_leader():
            health = await self._measure()
        return dataclasses.replace(health, meta=QueryMeta(index=self._ctx.raft.applied_index()))

    async def transfer_leadership(self, req: TransferLeadershipRequest) -> TransferLeadershipReply:
        raft = self._ctx.raft
        if req.address and req.id:
            raise ValidationError("specify either an address or an id, not both")
        target = req.address
        if req.id:
            target = next((s.raft_addr for s in self._ctx.servers() if s.id == req.id), "")
            if not target:
                raise NotFoundError(f"id {req.id!r} was not found in the Raft configuration")
        if target and target not in raft.peers():
            raise NotFoundError(f"address {target!r} was not found in the Raft configuration")
        if target == self._ctx.raft_addr:
            raise ValidationError("cannot transfer leadership to itself")
        moved = await raft.transfer_leadership(target or None)
        if not moved:
            raise NomaddError("leadership transfer did not complete in time")
        logger.info("leadership transferred target=%s", target or "any")
        return TransferLeadershipReply(meta=WriteMeta(index=raft.applied_index()), leader=raft.leader() or "")

    # ---- leader loop ---------------------------------------------------------------------------
    def set_enabled(self, enabled: bool) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._tracks.clear()
        self._health = None
        if enabled:
            self._task = self._tasks.spawn(self._run(), "autopilot")

    async def shutdown(self) -> None:
        self.set_enabled(False)
        await self._tasks.aclose()

    async def _run(self) -> None:
        if get_config(self._ctx.store.snapshot()) is None:
            with contextlib.suppress(NomaddError):
                entry = AutopilotSetConfigEntry(config=self._defaults, cas=True, cas_index=0)
                await self._ctx.propose(MessageType.AUTOPILOT_SET_CONFIG, entry)
        while True:
            try:
                self._health = await self._measure()
                if self.config().cleanup_dead_servers:
                    await self._cleanup(self._health)
            except NomaddError as err:
                logger.warning("autopilot round failed err=%s", err)
            except Exception:
                logger.exception("autopilot round crashed")
            await asyncio.sleep(HEALTH_INTERVAL_S)

    async def _stats(self, addr: str, info: ServerInfo | None) -> ServerStatsReply | None:
        if addr == self._ctx.raft_addr:
            return await self.server_stats(ServerStatsRequest())
        if info is None or info.status != MemberStatus.ALIVE or not info.http_addr:
            return None
        try:
            return await asyncio.wait_for(self._fetch(info.http_addr), STATS_TIMEOUT_S)
        except (TimeoutError, NomaddError, OSError) as err:
            logger.debug("autopilot cannot reach server addr=%s err=%s", addr, err)
            return None

    async def _measure(self) -> OperatorHealthReply:
        raft, cfg = self._ctx.raft, self.config()
        peers = raft.peers()
        by_addr = {s.raft_addr: s for s in self._ctx.servers()}
        leader = raft.leader() or ""
        own = await self.server_stats(ServerStatsRequest())
        replies = await asyncio.gather(*(self._stats(p, by_addr.get(p)) for p in peers))
        now, wall = time.monotonic(), time.time_ns()
        servers = []
        for addr, st in zip(peers, replies, strict=True):
            info = by_addr.get(addr)
            healthy = (
                st is not None
                and info is not None
                and info.status == MemberStatus.ALIVE
                and st.last_contact_ms <= cfg.last_contact_threshold_s * 1000
                and st.last_term == own.last_term
                and own.last_index - st.last_index <= cfg.max_trailing_logs
            )
            track = self._tracks.setdefault(addr, _Track(healthy=healthy, since=now, since_ns=wall))
            if track.healthy != healthy:
                track.healthy, track.since, track.since_ns = healthy, now, wall
            servers.append(
                ServerHealth(
                    id=info.id if info and info.id else addr,
                    name=info.name if info else "(unknown)",
                    address=addr,
                    serf_status=str(info.status) if info else "none",
                    version=info.build if info else "",
                    leader=addr == leader,
                    voter=True,
                    healthy=healthy,
                    last_contact_ms=st.last_contact_ms if st is not None else -1,
                    last_term=st.last_term if st is not None else 0,
                    last_index=st.last_index if st is not None else 0,
                    stable_since_ns=track.since_ns,
                )
            )
        for gone in set(self._tracks) - set(peers):
            del self._tracks[gone]
        healthy_n = sum(1 for s in servers if s.healthy)
        quorum = len(peers) // 2 + 1
        return OperatorHealthReply(
            meta=QueryMeta(index=raft.applied_index()),
            healthy=healthy_n == len(servers),
            failure_tolerance=max(0, healthy_n - quorum),
            leader=next((s.id for s in servers if s.leader), ""),
            voters=tuple(s.id for s in servers),
            servers=tuple(servers),
        )

    async def _cleanup(self, health: OperatorHealthReply) -> None:
        cfg, now = self.config(), time.monotonic()
        dead: dict[str, float] = {}
        stable: set[str] = set()
        for s in health.servers:
            track = self._tracks.get(s.address)
            if track is None:
                continue
            if s.healthy and now - track.since >= cfg.server_stabilization_time_s:
                stable.add(s.address)
            if not s.healthy and s.serf_status in ("failed", "left", "none"):
                dead[s.address] = now - track.since
        peers = [s.address for s in health.servers]
        addr = removable_peer(peers=peers, dead=dead, stable=stable, config=cfg)
        if addr is None or addr == self._ctx.raft_addr:
            return
        logger.info("autopilot removing dead server addr=%s unhealthy_for=%.1fs", addr, dead[addr])
        await self._ctx.raft.remove_peer(addr)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0

"""Which servers of the region are Raft peers: :mod:`membership`'s decisions, acted on.

* :meth:`RaftPeers.bootstrap` waits for ``bootstrap_expect`` servers of the region in gossip
  (``membership.bootstrap_decision``; with TLS only agents holding a server certificate count),
  or to be added by an existing cluster's leader, then starts Raft.
* :meth:`RaftPeers.reconcile` is the leader loop's reconciliation: gossip's view of the region's
  servers against the Raft peer set (``membership.reconcile_plan``): alive servers added,
  ``left`` or pruned ones removed.
* :meth:`RaftPeers.on_member_event` is gossip's callback: it remembers every region's servers
  for the next start (``SerfPeers``), notes reaped and pruned members, and wakes the leader loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nomadd.gossip import EventKind, Gossip, Member, MemberEvent, MemberStatus
from nomadd.rpc import RPCClient
from nomadd.rpc.auth import server_caller
from nomadd.server.config import ServerConfig
from nomadd.server.membership import (
    ServerInfo,
    bootstrap_decision,
    parse_server,
    reconcile_plan,
    region_servers,
)
from nomadd.server.raft import Raft
from nomadd.server.serf_peers import SerfPeers
from nomadd.structs.errors import RPCError
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.status import STATUS_PEERS

logger = logging.getLogger(__name__)

__all__ = ["BOOTSTRAP_POLL_S", "PEER_RPC_TIMEOUT_S", "RaftPeers"]

BOOTSTRAP_POLL_S = 0.5  # how often a waiting server re-checks gossip and its peers
PEER_RPC_TIMEOUT_S = 2.0


class RaftPeers:
    """The Raft peer set of one server, kept in line with gossip. ``gossip`` is set once the
    server has started it; until then nothing is known and nothing is done."""

    def __init__(
        self,
        config: ServerConfig,
        raft: Raft,
        rpc_client: RPCClient,
        serf_peers: SerfPeers,
        kick: Callable[[], None],
    ) -> None:
        self.config = config
        self.gossip: Gossip | None = None
        self._raft = raft
        self._rpc_client = rpc_client
        self._serf_peers = serf_peers
        self._kick = kick  # wakes the leader loop, which reconciles
        self._pruned: set[str] = set()  # raft addresses of servers force-left with prune, or reaped
        self._refused_logged: set[str] = set()

    @property
    def raft_addr(self) -> str:
        return self.config.advertise.raft

    def members(self) -> list[Member]:
        return self.gossip.members() if self.gossip else []

    def servers(self) -> list[ServerInfo]:
        """The region's servers as gossip sees them."""
        return region_servers(self.members(), self.config.region)

    # ---- gossip's events -------------------------------------------------------------------
    def on_member_event(self, event: MemberEvent) -> None:
        s = parse_server(event.member)
        if s is None:
            return
        logger.info(
            "server event type=%s name=%s region=%s status=%s", event.kind, s.name, s.region, s.status
        )
        if event.kind in (EventKind.JOIN, EventKind.UPDATE) and self.gossip is not None:
            # every region's servers: a restarted server rejoins the federation by itself
            self._serf_peers.remember(self.gossip.local_member().name, self.gossip.members())
        if s.region != self.config.region:
            return  # never a Raft peer of ours
        if event.kind == EventKind.REAP:
            self._pruned.add(s.raft_addr)
        if event.kind in (EventKind.JOIN, EventKind.UPDATE):
            self._pruned.discard(s.raft_addr)
        self._kick()

    def force_left(self, member: Member, prune: bool) -> None:
        """``member`` was made to leave (``server force-leave``): with ``prune`` it leaves the
        Raft peer set at the next reconciliation, which this starts."""
        servers = region_servers([member], self.config.region)
        if servers and prune:
            self._pruned.add(servers[0].raft_addr)
        self._kick()

    # ---- bootstrap -------------------------------------------------------------------------
    async def bootstrap(self, stopped: Callable[[], bool]) -> None:
        """Wait for ``bootstrap_expect`` servers (or to be added to a cluster), then start Raft."""
        last_reason = ""
        expect = self.config.bootstrap_expect
        while not self._raft.started and not stopped():
            servers = self.servers()
            alive = [s for s in servers if s.status == MemberStatus.ALIVE]
            # An agent without a server certificate (with TLS) does not count towards expect.
            identity = await asyncio.gather(*(self.has_server_identity(s) for s in alive))
            alive = [s for s, ok in zip(alive, identity, strict=True) if ok]
            peer_sets = await self._ask_peers([s for s in alive if s.raft_addr != self.raft_addr])
            decision = bootstrap_decision(
                self_raft=self.raft_addr, expect=expect, alive=alive, peer_sets=peer_sets
            )
            if decision.start_with is not None:
                logger.info(
                    "found expected number of peers, attempting to bootstrap cluster... reason=%r peers=%s",
                    decision.reason,
                    ",".join(decision.start_with),
                )
                await self._raft.start(peers=decision.start_with)
                return
            if decision.reason != last_reason:
                logger.info("raft not started yet reason=%r", decision.reason)
                last_reason = decision.reason
            await asyncio.sleep(BOOTSTRAP_POLL_S)

    async def _ask_peers(self, servers: list[ServerInfo]) -> dict[str, list[str]]:
        """Each server's Raft peer set (``Status.Peers``), by its raft address; those that do not
        answer are left out."""

        async def ask(s: ServerInfo) -> tuple[str, list[str] | None]:
            try:
                reply = await self._rpc_client.call(
                    s.http_addr, STATUS_PEERS, Envelope(caller=server_caller()), timeout=PEER_RPC_TIMEOUT_S
                )
            except RPCError as err:
                logger.debug("status.peers failed server=%s err=%s", s.name, err)
                return s.raft_addr, None
            return s.raft_addr, list(reply.peers)

        results = await asyncio.gather(*(ask(s) for s in servers if s.http_addr))
        return {addr: peers for addr, peers in results if peers is not None}

    # ---- the leader's reconciliation -------------------------------------------------------
    async def reconcile(self) -> None:
        if self.gossip is None:
            return
        servers = self.servers()
        plan = reconcile_plan(
            self_raft=self.raft_addr,
            servers=servers,
            raft_peers=self._raft.peers(),
            pruned=self._pruned,
        )
        for name in plan.refused:
            if name not in self._refused_logged:
                self._refused_logged.add(name)
                logger.error(
                    "server is in bootstrap mode (bootstrap_expect = 1), not adding raft peer name=%s",
                    name,
                )
        for addr in plan.remove:
            logger.info("removing server from raft peers addr=%s", addr)
            await self._raft.remove_peer(addr)
            self._pruned.discard(addr)
        by_raft = {s.raft_addr: s for s in servers}
        for addr in plan.add:
            if not await self.has_server_identity(by_raft[addr]):
                continue
            logger.info("adding server to raft peers addr=%s", addr)
            await self._raft.add_peer(addr)

    async def has_server_identity(self, s: ServerInfo) -> bool:
        """With TLS, only an agent holding a server certificate becomes a Raft peer (checked
        by a TLS handshake to its HTTP address; always true without TLS)."""
        if s.raft_addr == self.raft_addr:
            return True
        try:
            refusal = await self._rpc_client.check_server(s.http_addr, timeout=PEER_RPC_TIMEOUT_S)
        except RPCError as err:
            logger.debug("server identity not checked yet name=%s err=%s", s.name, err)
            return False
        if not refusal:
            self._refused_logged.discard(s.raft_addr)
            return True
        if s.raft_addr not in self._refused_logged:
            self._refused_logged.add(s.raft_addr)
            logger.error(
                "not adding raft peer: no valid server certificate addr=%s err=%s", s.raft_addr, refusal
            )
        return False

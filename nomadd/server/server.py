"""The server: Raft + FSM + state store + gossip LAN pool + leader loop + internal RPC.

Lifecycle (called by :class:`nomadd.agent.agent.Agent`): ``await start()`` after the HTTP port
is bound; ``await leave()`` on a graceful stop (a leader transfers leadership first, then the
server asks the leader to drop it from the Raft peer set and gossips ``left``; bounded);
``await shutdown()`` always (idempotent); ``stats()`` / ``member_info()`` for /v1/agent/self;
``await reload(cfg)`` on SIGHUP.

Raft starts at once when this server already has Raft state on disk, in ``-dev``, or with
``bootstrap_expect = 1``; otherwise a bootstrap task waits for ``bootstrap_expect`` servers of
the region in gossip, or to be added by an existing cluster's leader (``raft_peers.RaftPeers``,
which also keeps the Raft peer set in line with gossip while this server leads).

Every request goes through :meth:`Server.rpc` (``"Endpoint.Method"``): a request for another
region goes to a server of that region (``federation.Regions``; writes of replicated objects go
to the authoritative region, ``replication.route``); writes, and reads without
``AllowStale``, are forwarded once to the leader over the internal RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nomadd import VERSION
from nomadd.discovery import Resolver, RetryJoinExhausted, retry_join, start_join
from nomadd.gossip import ForceLeaveResult, Gossip, GossipConfig, Member, MemberStatus
from nomadd.helper.addr import split_host_port
from nomadd.helper.supervisor import FatalHandler, Supervisor
from nomadd.rpc import RPCClient, RPCRegistry
from nomadd.rpc.auth import ServerSigner, server_caller
from nomadd.rpc.tls import AgentTLS
from nomadd.server.acl.endpoint import ACLEndpoint
from nomadd.server.acl.gc import ACLTokenGC
from nomadd.server.acl.resolver import ACLResolver, Resolved, follower_source, local_source
from nomadd.server.alloc_endpoint import AllocEndpoint
from nomadd.server.blocking import BlockingQueries
from nomadd.server.config import ServerConfig
from nomadd.server.context import RPCDispatch, ServerContext
from nomadd.server.deployment_endpoint import DeploymentEndpoint
from nomadd.server.eval_endpoint import EvalEndpoint
from nomadd.server.events import EventBroker
from nomadd.server.federation import Regions, forward_timeout
from nomadd.server.fsm import FSM
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.fsm.snapshot import SnapshotRestorer
from nomadd.server.gossip_keyring import GossipKeyring
from nomadd.server.job_features import build_job_features
from nomadd.server.job_gc import JobGC
from nomadd.server.job_validate import JobValidateEndpoint
from nomadd.server.keyring import Keyring, KeyringEndpoint
from nomadd.server.leader import LeaderComponent, LeaderLoop
from nomadd.server.membership import ServerInfo, server_tags
from nomadd.server.namespace_endpoint import NamespaceEndpoint
from nomadd.server.node_endpoint import NodeEndpoint
from nomadd.server.node_gc import NodeGC
from nomadd.server.operator_endpoint import OperatorEndpoint
from nomadd.server.operator_features import build_operator_features
from nomadd.server.raft import Raft, RaftConfig, has_existing_state
from nomadd.server.raft_peers import RaftPeers
from nomadd.server.replication import Replicator, authoritative_route
from nomadd.server.rpc_auth import RPCAuth
from nomadd.server.scheduling_service import SchedulingService
from nomadd.server.search_endpoint import SearchEndpoint
from nomadd.server.serf_peers import SerfPeers
from nomadd.server.service_endpoint import ServiceEndpoint
from nomadd.server.state import store_nodes
from nomadd.server.state.store import StateStore
from nomadd.server.status_endpoint import StatusEndpoint, server_member
from nomadd.server.system_endpoint import SystemEndpoint
from nomadd.server.var_endpoint import VariablesEndpoint
from nomadd.structs.codec import to_api
from nomadd.structs.errors import NoLeaderError, NomaddError, PermissionDeniedError, RPCError, ValidationError
from nomadd.structs.requests import Method, Rep, Req
from nomadd.structs.requests.acl import ACL_RESOLVE_TOKEN, ACLGetRequest
from nomadd.structs.requests.operator import OPERATOR_REMOVE_PEER_BY_ADDRESS, RaftPeerByAddressRequest

if TYPE_CHECKING:
    from nomadd.discovery import MdnsAnnouncer

logger = logging.getLogger(__name__)

__all__ = ["Server"]

LEADER_WAIT_S = 5.0  # Nomad's RPCHoldTimeout: how long a forward waits for a leader
LEAVE_RAFT_TIMEOUT_S = 2.5  # bounded parts of a graceful leave (the agent allows 5 s in all)
LEAVE_GOSSIP_TIMEOUT_S = 2.0
MDNS_STOP_TIMEOUT_S = 1.0  # goodbye packets on leave/shutdown; never worth more than this


class Server:
    def __init__(
        self, config: ServerConfig, *, on_fatal: FatalHandler | None = None, tls: AgentTLS | None = None
    ) -> None:
        self.config = s = config
        self.data_dir: Path | None = Path(s.data_dir) if s.data_dir else None
        raft_dir = None if (config.dev_mode or self.data_dir is None) else self.data_dir / "raft"
        self.serf_peers = SerfPeers(
            None if raft_dir is None or self.data_dir is None else self.data_dir / "serf_peers.json"
        )
        self.node_id = ""
        self.raft_addr = config.advertise.raft
        self.http_addr = config.advertise.http
        self.store = StateStore()
        spool = str(self.data_dir) if self.data_dir else None  # restores' chunks (fsm/snapshot.py)
        self.restorer = SnapshotRestorer(spool_dir=spool)
        self.fsm = FSM(self.store, entry_kinds(self.restorer), EventBroker(config.event_buffer_size))
        bind_host = config.addresses.raft if config.addresses else config.bind_addr
        self.raft = Raft(
            RaftConfig(
                self_addr=self.raft_addr,
                bind_addr=f"{bind_host}:{config.ports.raft}",
                password=s.raft_secret,
                data_dir=raft_dir,
            ).scaled(s.raft_multiplier),
            self.fsm,
        )
        self.restorer.leading = self.raft.is_leader  # a follower's decoder runs nicer (fsm/snapshot.py)
        self.signer = ServerSigner(s.raft_secret)
        self.rpc_client = RPCClient(tls, credentials=self.signer)
        self.regions = Regions(region=config.region, members=self._gossip_members, rpc=self.rpc_client)
        self.rpc_auth = RPCAuth(self.signer, lambda node_id: store_nodes.get(self.store.snapshot(), node_id))
        self.registry = RPCRegistry()
        self.gossip_keyring = GossipKeyring(
            name=lambda: f"{config.name}.{config.region}",
            data_dir=None if config.dev_mode else self.data_dir,
            servers=self.regions.servers,  # every region: one pool, one key
            http_addr=self.http_addr,
            rpc=self.rpc_client,
        )
        self.gossip_keyring.register(self.registry)
        self.tasks = Supervisor("server", on_fatal=on_fatal)
        # Before the endpoints: they may register leader components (heartbeat timers, GC).
        self.peers = RaftPeers(
            config, self.raft, self.rpc_client, self.serf_peers, lambda: self.leader_loop.kick()
        )
        self.leader_loop = LeaderLoop(self.raft, self.peers.reconcile, tasks=self.tasks.child("leader"))
        self.ctx = ServerContext(
            config=config,
            store=self.store,
            fsm=self.fsm,
            raft=self.raft,
            blocking=BlockingQueries(self.store, self.raft),
            rpc=RPCDispatch(self.rpc),
            register_leader_component=self.register_leader_component,
            servers=self.servers,
            http_addr=self.http_addr,
            raft_addr=self.raft_addr,
            acl=ACLResolver(
                config.acl,
                follower_source(local_source(self.store.snapshot), self.raft.is_leader, self._leader_resolve),
            ),
        )
        self.scheduling = SchedulingService(self.ctx, self.tasks, self.registry)
        self.register_leader_component(self.scheduling)
        self.jobs = build_job_features(self.ctx, self.registry, self.register_leader_component)
        # operator features: snapshots (save/restore, scheduled) and autopilot
        self.autopilot, self.snapshots = build_operator_features(
            self.ctx,
            self.registry,
            self.register_leader_component,
            restorer=self.restorer,
            on_restored=self.leader_loop.restart,
            leader_http=self._wait_leader_http,
            rpc_client=self.rpc_client,
        )
        self.allocs = AllocEndpoint(self.ctx)
        self.allocs.register(self.registry)
        self.evals = EvalEndpoint(self.ctx)
        self.evals.register(self.registry)
        self.nodes = NodeEndpoint(self.ctx, leader_http_addr=self.leader_http_addr)
        self.nodes.register(self.registry)
        StatusEndpoint(self.ctx, members=self._gossip_members).register(self.registry)
        OperatorEndpoint(self.ctx).register(self.registry)
        self.keyring = Keyring(self.ctx)
        VariablesEndpoint(self.ctx, self.keyring).register(self.registry)
        KeyringEndpoint(self.ctx, self.keyring).register(self.registry)
        ACLEndpoint(self.ctx).register(self.registry)
        for endpoint in (NamespaceEndpoint, SearchEndpoint, JobValidateEndpoint, ServiceEndpoint):
            endpoint(self.ctx).register(self.registry)
        DeploymentEndpoint(self.ctx).register(self.registry)  # and its leader's watcher
        self.acl_gc = ACLTokenGC(self.ctx)
        self.register_leader_component(self.acl_gc)
        self.replicator = Replicator(self.ctx, self.regions)
        self.register_leader_component(self.replicator)
        self.job_gc = JobGC(self.ctx)
        self.node_gc = NodeGC(self.ctx)
        self.register_leader_component(self.node_gc)
        self.register_leader_component(self.job_gc)
        SystemEndpoint(self.ctx, job_gc=self.job_gc, node_gc=self.node_gc).register(self.registry)
        self.gossip: Gossip | None = None
        self._announcer: MdnsAnnouncer | None = None
        self._stopped = False
        # Set when the server cannot go on (retry_join exhausted); the agent exits 1 on it,
        # as Nomad does. ``fatal_error`` says why.
        self.failed = asyncio.Event()
        self.fatal_error = ""

    # ---- lifecycle -------------------------------------------------------------------------
    def _load_node_id(self) -> str:
        if self.data_dir is None or self.config.dev_mode:
            return str(uuid.uuid4())
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.data_dir / "node-id"
        if path.exists():
            return path.read_text().strip()
        node_id = str(uuid.uuid4())
        path.write_text(node_id)
        path.chmod(0o600)
        return node_id

    async def start(self) -> None:
        cfg = self.config
        self.node_id = await asyncio.to_thread(self._load_node_id)
        stored_keys = await asyncio.to_thread(self.gossip_keyring.load)  # wins over server.encrypt
        serf_host, serf_port = split_host_port(cfg.advertise.serf)
        bind_serf = cfg.addresses.serf if cfg.addresses else cfg.bind_addr
        self.gossip = Gossip(
            GossipConfig(
                name=f"{cfg.name}.{cfg.region}",
                bind_addr=bind_serf,
                bind_port=cfg.ports.serf,
                advertise_addr=serf_host,
                advertise_port=serf_port,
                tags=server_tags(
                    node_id=self.node_id,
                    region=cfg.region,
                    datacenter=cfg.datacenter,
                    raft_addr=self.raft_addr,
                    http_addr=self.http_addr,
                    build=VERSION,
                    expect=cfg.bootstrap_expect,
                ),
                encrypt_key=stored_keys[0] if stored_keys else cfg.encrypt,
                remote_tag="region",  # servers of other regions: WAN probe timings
            ),
            on_event=self.peers.on_member_event,
            tasks=self.tasks.child("gossip"),
        )
        self.peers.gossip = self.gossip
        await asyncio.to_thread(self.gossip_keyring.attach, self.gossip, stored_keys)
        known = self.serf_peers.known()  # before gossip's first event (our own join) rewrites it
        await self.gossip.start()
        self.tasks.spawn(self._announce(), "server-mdns-announce")
        self.scheduling.start()  # follower workers (server.follower_schedulers), idle while leading
        raft_dir = self.raft.config.data_dir
        if cfg.dev_mode or has_existing_state(raft_dir) or cfg.bootstrap_expect == 1:
            await self.raft.start(peers=())
        else:
            # Vital, as the join below: a server that never starts Raft only looks alive.
            self.tasks.spawn(self.peers.bootstrap(lambda: self._stopped), "server-bootstrap", vital=True)
        join = cfg.server_join
        resolver = Resolver(cfg.discovery.dns_resolvers, region=cfg.region)
        if join.start_join:
            await start_join(join.start_join, self.join, resolver=resolver)
        if join.retry_join:
            self.tasks.spawn(self._retry_join(join.retry_join, resolver), "server-retry-join", vital=True)
        if known and not join.start_join:
            self.tasks.spawn(self._rejoin_known(known), "server-rejoin")

    async def _announce(self) -> None:
        """Announce this server on mDNS (``_nomadd._tcp.local.``, docs/discovery.md) so
        ``mdns://`` joins find it; takes ~1.7 s of probing, so it runs in the background."""
        cfg = self.config
        host, http_port = split_host_port(cfg.advertise.http)
        ports = {
            "http": http_port,
            "raft": split_host_port(cfg.advertise.raft)[1],
            "serf": split_host_port(cfg.advertise.serf)[1],
        }
        try:
            from nomadd.discovery import MdnsAnnouncer  # zeroconf: imported off the start-up path

            self._announcer = MdnsAnnouncer(cfg.name, cfg.region, cfg.datacenter, "server", host, ports)
            await self._announcer.start()
        except (NomaddError, OSError) as err:
            logger.warning("mdns announce failed, mdns:// joins will not find us err=%s", err)

    async def _stop_announcer(self) -> None:
        announcer, self._announcer = self._announcer, None
        if announcer is None:
            return
        try:
            await asyncio.wait_for(announcer.stop(), MDNS_STOP_TIMEOUT_S)
        except (TimeoutError, NomaddError, OSError) as err:
            logger.warning("mdns announce stop failed err=%r", err)

    async def _retry_join(self, entries: Iterable[str], resolver: Resolver) -> None:
        j = self.config.server_join
        try:
            await retry_join(
                entries,
                self.join,
                resolver=resolver,
                interval=j.retry_interval,
                max_attempts=j.retry_max,
            )
        except RetryJoinExhausted as err:
            self.fatal_error = str(err)
            self.failed.set()

    async def _rejoin_known(self, addrs: list[str]) -> None:
        with contextlib.suppress(NomaddError):
            n = await self.join(addrs)
            logger.info("rejoined known servers joined=%d known=%d", n, len(addrs))

    async def leave(self) -> None:
        """Nomad's ``Server.Leave``: transfer leadership, leave the peer set, gossip ``left``."""
        logger.info("server starting leave")
        if self.raft.started and len(self.raft.peers()) > 1:
            try:
                if self.raft.is_leader():
                    moved = await self._transfer_before_leave()
                    logger.info("leadership transfer before leave moved=%s", moved)
                await asyncio.wait_for(
                    self.rpc(
                        OPERATOR_REMOVE_PEER_BY_ADDRESS,
                        RaftPeerByAddressRequest(address=self.raft_addr, caller=server_caller()),
                    ),
                    LEAVE_RAFT_TIMEOUT_S,
                )
                logger.info("left raft configuration addr=%s", self.raft_addr)
            except (TimeoutError, NomaddError) as err:
                logger.warning("failed to leave raft configuration gracefully err=%r", err)
        await self._stop_announcer()
        if self.gossip is not None:
            await self.gossip.leave(timeout=LEAVE_GOSSIP_TIMEOUT_S)
        if not self.config.rejoin_after_leave:
            self.serf_peers.forget()

    async def _transfer_before_leave(self) -> bool:
        """pysyncobj refuses a transfer while no follower has every entry (REQUEST_DENIED);
        under write load that is common, so retry briefly within the leave budget."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEAVE_RAFT_TIMEOUT_S
        while loop.time() < deadline:
            try:
                return await self.raft.transfer_leadership(timeout=deadline - loop.time())
            except NoLeaderError:
                return False
            except NomaddError as err:
                logger.debug("leadership transfer refused, retrying err=%s", err)
                await asyncio.sleep(0.1)
        return False

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        await self.tasks.aclose()
        await self._stop_announcer()
        await self.leader_loop.shutdown()
        await self.raft.shutdown()
        if self.gossip is not None:
            await self.gossip.shutdown()
        await self.rpc_client.close()

    async def reload(self, config: ServerConfig) -> None:
        self.config = self.peers.config = config  # nothing of the server changes live yet

    # ---- membership ------------------------------------------------------------------------
    def _gossip_members(self) -> list[Member]:
        return self.gossip.members() if self.gossip else []

    def servers(self) -> list[ServerInfo]:
        return self.peers.servers()

    def register_leader_component(self, component: LeaderComponent) -> None:
        """Leader-only parts (heartbeat timers, node GC, ...): ``set_enabled(bool)`` is called
        when leadership is established (after the barrier) and when it is lost."""
        self.leader_loop.register(component)

    async def join(self, addrs: Iterable[str]) -> int:
        if self.gossip is None:
            raise NoLeaderError("server is not started")
        return await self.gossip.join(list(addrs))

    async def force_leave(self, name: str, prune: bool = False) -> ForceLeaveResult:
        if self.gossip is None:
            raise NoLeaderError("server is not started")
        member = next((m for m in self.gossip.members() if m.name == name), None)
        result = await self.gossip.force_leave(name, prune=prune)
        if result.changed and member is not None:
            self.peers.force_left(member, prune)
        return result

    # ---- RPC -------------------------------------------------------------------------------
    def leader_http_addr(self) -> str | None:
        leader = self.raft.leader()
        if leader is None:
            return None
        if leader == self.raft_addr:
            return self.http_addr
        for s in self.servers():
            if s.raft_addr == leader and s.http_addr:
                return s.http_addr
        return None

    async def _wait_leader_http(self) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEADER_WAIT_S
        while True:
            addr = self.leader_http_addr()
            if addr is not None:
                return addr
            if loop.time() > deadline:
                raise NoLeaderError()
            await asyncio.sleep(0.05)

    async def rpc(self, method: Method[Req, Rep], req: Req) -> Rep:
        """Run ``method`` here or on the leader (Nomad's ``forward``).

        Writes, and reads without ``allow_stale``, run on the leader: a follower forwards them
        once, with ``forwarded`` set in the envelope (a forwarded request that reaches a
        follower fails instead of being forwarded again).
        """
        m = self.registry.lookup(method.name)
        if not isinstance(req, m.method.request):
            raise ValidationError(f"rpc {method.name}: request is {type(req).__name__}")
        self.rpc_auth.authorize(method.name, req)
        req = authoritative_route(self.config, method, req, self.store.snapshot)
        if req.region and req.region != self.config.region:
            return await self.regions.forward(method, req)
        if self._needs_leader(m.kind, req.allow_stale):
            if req.forwarded:
                raise NoLeaderError("No cluster leader (forwarded request reached a follower)")
            addr = await self._wait_leader_http()
            if addr != self.http_addr:
                fwd = dataclasses.replace(req, forwarded=True)
                return await self.rpc_client.call(addr, method, fwd, timeout=forward_timeout(req))
        await self._ready_for(m.kind, req.allow_stale)
        reply: Rep = await m.handler(req)
        return reply

    async def _leader_resolve(self, secret: str) -> Resolved | None:
        """The leader's token and policies for ``secret`` (``ACL.ResolveToken``, asked once: the
        leader answers from its own state); None when no leader answered. Unknown there too:
        PermissionDeniedError."""
        addr = self.leader_http_addr()
        if addr is None or addr == self.http_addr:
            return None
        req = ACLGetRequest(key=secret, auth_token=secret, caller=server_caller(), forwarded=True)
        try:
            reply = await self.rpc_client.call(addr, ACL_RESOLVE_TOKEN, req, timeout=LEADER_WAIT_S)
        except PermissionDeniedError:
            raise
        except (RPCError, NoLeaderError) as err:
            logger.debug("acl token not resolved by the leader err=%s", err)
            return None
        return Resolved(token=reply.token, policies=reply.policies)

    def _needs_leader(self, kind: str, allow_stale: bool) -> bool:
        needs = kind == "write" or (kind == "read" and not allow_stale)
        return needs and not self.raft.is_leader()

    async def _ready_for(self, kind: str, allow_stale: bool) -> None:
        """Read-your-writes across an election: a consistent read on a new leader waits until
        its state holds every committed entry (``Raft.ready_for_reads``)."""
        if kind == "read" and not allow_stale:
            await self.raft.wait_ready_for_reads()

    def method_of(self, name: str) -> Method[Any, Any]:
        """The method called ``name`` (for the internal RPC endpoint, which has only its name)."""
        return self.registry.lookup(name).method

    # ---- views -----------------------------------------------------------------------------
    def stats(self) -> dict[str, object]:
        members = self._gossip_members()
        regions = self.regions.known()
        return {
            "nomad": {
                "server": "true",
                "leader": str(self.raft.is_leader()).lower(),
                "leader_addr": self.raft.leader() or "",
                "bootstrap": str(self.config.bootstrap_expect == 1).lower(),
                "known_regions": str(len(regions)),
            },
            "raft": self.raft.stats(),
            "serf": {
                "members": str(len(members)),
                "failed": str(sum(m.status == MemberStatus.FAILED for m in members)),
                "left": str(sum(m.status == MemberStatus.LEFT for m in members)),
                "encrypted": str(self.config.encrypt is not None).lower(),
            },
        }

    def member_info(self) -> dict[str, object]:
        if self.gossip is None:
            return {}
        try:
            return to_api(server_member(self.gossip.local_member()))
        except NomaddError:  # gossip not started yet: the HTTP API already answers
            return {}

"""The client agent: node identity, fingerprint, register, heartbeat, leave (Nomad's client.go).

Lifecycle (driven by :class:`nomadd.agent.agent.Agent`): ``await start()`` once the HTTP port is
bound — opens ``<state_dir>/state.db`` (node ID + secret survive restarts), fingerprints the
host and starts the background tasks: registration + heartbeats (:mod:`.heartbeat` rules,
servers from :class:`.servers.ServerList`), periodic re-fingerprinting (re-registers only when
the fingerprint changed) and the allocation watcher. ``await leave()`` (graceful stop with
``leave_on_*``) marks the node down on the servers at once ("Node left") without touching its
tasks; ``await shutdown()`` stops the client's own tasks and never kills task processes (in
``-dev`` it destroys its allocations, as Nomad does).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import tempfile
import time

from nomadd.client.allocs import AllocManager
from nomadd.client.config import ClientConfig
from nomadd.client.drain import drain_self
from nomadd.client.fingerprint import (
    FingerprintConfig,
    NodeFingerprint,
    fingerprint_node,
    min_period_s,
    refingerprint_node,
)
from nomadd.client.fingerprint.convert import node_fields
from nomadd.client.heartbeat import (
    FIRST_HEARTBEAT_STAGGER_S,
    NO_SERVERS_RETRY_S,
    heartbeat_retry_delay,
    random_stagger,
    register_retry_delay,
)
from nomadd.client.servers import NoServersError, ServerList
from nomadd.client.state import ClientState
from nomadd.discovery import Resolver
from nomadd.helper.supervisor import FatalHandler, Supervisor
from nomadd.rpc import RPCClient
from nomadd.rpc.auth import NodeCredentials
from nomadd.rpc.tls import AgentTLS
from nomadd.structs.errors import NoLeaderError, RPCError, UnknownNodeError
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.requests import Method, Rep, Req
from nomadd.structs.requests.node import (
    NODE_REGISTER,
    NODE_UPDATE_STATUS,
    NodeHeartbeatReply,
    NodeRegisterRequest,
    NodeUpdateStatusRequest,
)

logger = logging.getLogger(__name__)

__all__ = ["FINGERPRINT_PERIOD_S", "LEAVE_RPC_TIMEOUT_S", "Client"]

FINGERPRINT_PERIOD_S = 30.0  # Nomad's driver fingerprint period (exec, raw_exec)
MIN_FINGERPRINT_PERIOD_S = 5.0
LEAVE_RPC_TIMEOUT_S = 3.0  # inside the agent's 5 s LEAVE_TIMEOUT_S
HEARTBEAT_RPC_TIMEOUT_S = 10.0
MIN_HEARTBEAT_INTERVAL_S = 0.5  # never spin if a reply carries no TTL


def fingerprint_config(config: ClientConfig, alloc_dir: str) -> FingerprintConfig:
    c = config
    drivers = ["raw_exec"]
    if c.exec_enabled:
        drivers.append("exec")
    if config.dev_mode or c.options.get("driver.mock.enable", "").lower() in ("1", "true"):
        drivers.append("mock")
    drivers.append("docker")  # undetected where no daemon answers on its endpoint
    return FingerprintConfig(
        network_interface=c.network_interface,
        alloc_dir=alloc_dir,
        reserved_cpu_mhz=c.reserved.cpu,
        reserved_memory_mb=c.reserved.memory,
        reserved_disk_mb=c.reserved.disk,
        reserved_ports=c.reserved.reserved_ports,
        cpu_total_compute=c.cpu_total_compute,
        memory_total_mb=c.memory_total_mb,
        disk_total_mb=c.disk_total_mb,
        min_dynamic_port=c.min_dynamic_port,
        max_dynamic_port=c.max_dynamic_port,
        raw_exec_enabled=c.raw_exec_enabled,
        drivers=tuple(drivers),
        driver_options=c.plugin_config,
    )


class Client:
    def __init__(
        self, config: ClientConfig, *, on_fatal: FatalHandler | None = None, tls: AgentTLS | None = None
    ) -> None:
        self.config = config
        c = config
        self.rpc_client = RPCClient(tls, credentials=NodeCredentials(self._identity))
        self.server_list = ServerList(
            [*c.servers, *c.server_join.retry_join],
            resolver=Resolver(config.discovery.dns_resolvers, region=config.region),
            rpc=self.rpc_client,
            fallback=config.local_server,
        )
        self.state_dir = c.state_dir
        self.alloc_dir = c.alloc_dir
        self.state: ClientState | None = None
        self.node: Node | None = None
        self._fingerprint: NodeFingerprint | None = None
        self.tasks = Supervisor("client", on_fatal=on_fatal)
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.heartbeat_ttl = 0.0
        self.last_heartbeat = 0.0  # monotonic time of the last successful heartbeat
        self.have_heartbeated = False
        self.registered = False
        self._started = False
        self._stopped = False
        self._left = False
        self.allocs: AllocManager | None = None  # set in start()

    # ---- lifecycle -------------------------------------------------------------------------
    def _identity(self) -> tuple[str, str]:
        """This node's ID and SecretID, which authenticate its calls to the servers."""
        return (self.node.id, self.node.secret_id) if self.node is not None else ("", "")

    @property
    def node_id(self) -> str:
        return self.node.id if self.node is not None else ""

    async def start(self) -> None:
        if not self.state_dir:
            self.state_dir = await asyncio.to_thread(tempfile.mkdtemp, prefix="nomadd-client-")
            logger.warning("client has no data dir, using a temporary state dir path=%s", self.state_dir)
        if not self.alloc_dir:
            self.alloc_dir = os.path.join(os.path.dirname(self.state_dir.rstrip("/")), "alloc")
        self.state = await asyncio.to_thread(ClientState, self.state_dir)
        ident = await asyncio.to_thread(self.state.node_identity)
        await asyncio.to_thread(os.makedirs, self.alloc_dir, 0o711, True)
        fp_cfg = fingerprint_config(self.config, self.alloc_dir)
        self._fingerprint = await fingerprint_node(fp_cfg)
        cfg = self.config
        self.node = Node(
            id=ident.node_id,
            secret_id=ident.secret_id,
            datacenter=cfg.datacenter,
            name=cfg.name or socket.gethostname(),
            http_addr=cfg.advertise.http,
            tls_enabled=cfg.tls.http,
            meta=dict(cfg.meta),
            node_class=cfg.node_class,
            node_pool=cfg.node_pool,
            host_volumes=dict(cfg.host_volumes),
            status=NodeStatus.INITIALIZING,
            **node_fields(self._fingerprint),
        ).with_computed_class()
        logger.info("client started node_id=%s name=%s", self.node.id, self.node.name)
        self._started = True
        self._start_allocs()
        # Vital: a client that stops heartbeating is marked down and its allocations are
        # replaced elsewhere while its tasks keep running here.
        heartbeat = self._register_and_heartbeat()
        self._heartbeat_task = self.tasks.spawn(heartbeat, "client-heartbeat", vital=True)
        self.tasks.spawn(self._fingerprint_loop(fp_cfg), "client-fingerprint")

    def _start_allocs(self) -> None:
        self.allocs = AllocManager(self)
        # Vital: without it the node looks healthy but never runs, stops or reports allocations.
        self.tasks.spawn(self.allocs.run(), "client-allocs", vital=True)

    async def leave(self) -> None:
        """With ``drain_on_shutdown``, drain the node first (heartbeats go on meanwhile); then
        mark the node down on the servers now ("Node left"); tasks keep running."""
        if self.config.drain_on_shutdown is not None:
            await drain_self(self)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
        if self.node is None or not self.registered:
            return
        self._left = True
        req = NodeUpdateStatusRequest(
            node_id=self.node.id, secret_id=self.node.secret_id, status=NodeStatus.DOWN, leave=True
        )
        try:
            await asyncio.wait_for(
                self.server_list.call(NODE_UPDATE_STATUS, req, timeout=LEAVE_RPC_TIMEOUT_S),
                LEAVE_RPC_TIMEOUT_S,
            )
            logger.info("node marked down on leave node_id=%s", self.node.id)
        except (TimeoutError, RPCError) as err:
            logger.warning("failed to mark node down on leave node_id=%s err=%s", self.node.id, err)

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.allocs is not None:
            await self.allocs.shutdown(destroy=self.config.dev_mode)
        await self.tasks.aclose()
        await self.rpc_client.close()
        if self.state is not None:
            await asyncio.to_thread(self.state.close)

    async def reload(self, config: ClientConfig) -> None:
        """Take a new config: a changed server list is resolved again now; other client
        settings (node class, meta, reserved) take effect at the next start."""
        c = config
        entries = (*c.servers, *c.server_join.retry_join)
        self.config = config
        if entries != self.server_list.entries:
            logger.info("client server list changed, resolving it again entries=%s", ",".join(entries))
            self.server_list.entries = entries
            await self.server_list.discover()

    # ---- registration and heartbeats -------------------------------------------------------
    async def call(self, method: Method[Req, Rep], request: Req) -> Rep:
        """Run a server RPC through this client's server list (for a client-only agent's API)."""
        wait = request.max_query_time_s if request.min_query_index > 0 else 0.0
        return await self.server_list.call(method, request, timeout=10.0 + wait * 17 / 16)

    def _handle_reply(self, reply: NodeHeartbeatReply) -> None:
        self.server_list.set_from_reply(reply.servers)
        if reply.heartbeat_ttl > 0:
            self.heartbeat_ttl = reply.heartbeat_ttl
        self.last_heartbeat = time.monotonic()

    async def _register(self) -> None:
        assert self.node is not None
        reply = await self.server_list.call(NODE_REGISTER, NodeRegisterRequest(node=self.node))
        self._handle_reply(reply)
        self.registered = True
        logger.info("node registration complete node_id=%s ttl=%.1fs", self.node.id, self.heartbeat_ttl)

    async def _register_until_ok(self) -> None:
        while True:
            try:
                await self._register()
                return
            except NoServersError:
                delay = NO_SERVERS_RETRY_S
                logger.warning("no servers known, retrying registration in %.1fs", delay)
            except RPCError as err:
                delay = register_retry_delay()
                logger.error("error registering node err=%s retry_s=%.1f", err, delay)
            await asyncio.sleep(delay)

    async def _heartbeat(self) -> None:
        assert self.node is not None
        req = NodeUpdateStatusRequest(
            node_id=self.node.id, secret_id=self.node.secret_id, status=NodeStatus.READY
        )
        reply = await self.server_list.call(NODE_UPDATE_STATUS, req, timeout=HEARTBEAT_RPC_TIMEOUT_S)
        self._handle_reply(reply)
        if not self.have_heartbeated or self.node.status != NodeStatus.READY:
            self.node = dataclasses.replace(self.node, status=NodeStatus.READY)
            logger.info("node is ready node_id=%s", self.node.id)
        self.have_heartbeated = True

    async def _register_and_heartbeat(self) -> None:
        while True:
            await self._register_until_ok()
            delay = 0.0 if self.config.dev_mode else random_stagger(FIRST_HEARTBEAT_STAGGER_S)
            while True:
                await asyncio.sleep(delay)
                try:
                    await self._heartbeat()
                    delay = max(self.heartbeat_ttl, MIN_HEARTBEAT_INTERVAL_S)
                except UnknownNodeError:
                    logger.warning("node not found on the servers, registering again")
                    break
                except NoServersError:
                    delay = NO_SERVERS_RETRY_S
                except RPCError as err:
                    delay = heartbeat_retry_delay(
                        now=time.monotonic(),
                        last_ok=self.last_heartbeat,
                        ttl=self.heartbeat_ttl,
                        have_heartbeated=self.have_heartbeated,
                        no_leader=isinstance(err, NoLeaderError),
                    )
                    logger.error("error heartbeating err=%s retry_s=%.1f", err, delay)

    async def _fingerprint_loop(self, fp_cfg: FingerprintConfig) -> None:
        period = max(
            MIN_FINGERPRINT_PERIOD_S, min(FINGERPRINT_PERIOD_S, min_period_s() or FINGERPRINT_PERIOD_S)
        )
        while True:
            await asyncio.sleep(period)
            assert self._fingerprint is not None and self.node is not None
            new = await refingerprint_node(fp_cfg, self._fingerprint)
            if new == self._fingerprint:
                continue
            self._fingerprint = new
            self.node = dataclasses.replace(self.node, **node_fields(new)).with_computed_class()
            logger.info("node fingerprint changed, updating servers node_id=%s", self.node.id)
            if self.registered:
                try:
                    await self._register()
                except RPCError as err:
                    logger.warning("node update failed err=%s", err)

    # ---- views -----------------------------------------------------------------------------
    def health(self) -> tuple[bool, str]:
        if not self.server_list.servers():
            return False, "no known servers"
        return True, "ok"

    def stats(self) -> dict[str, object]:
        since = time.monotonic() - self.last_heartbeat if self.last_heartbeat else 0.0
        n_allocs = self.allocs.count() if self.allocs is not None else 0
        return {
            "node_id": self.node_id,
            "known_servers": ",".join(self.server_list.servers()),
            "num_allocations": str(n_allocs),
            "last_heartbeat": f"{since:.3f}s",
            "heartbeat_ttl": f"{self.heartbeat_ttl:.3f}s",
        }

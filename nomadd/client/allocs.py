"""The client's allocations: watch the servers, run alloc runners, report status (Nomad's
``client.go`` ``watchAllocations`` / ``runAllocs`` / ``allocSync``).

* **watch**: a blocking ``Node.GetClientAllocs`` (``MinQueryIndex`` = last index) returns
  ``{alloc_id: AllocModifyIndex}``; allocations that are new or whose index moved are fetched
  with ``Alloc.GetAllocs`` and handed to their runner (a new runner, or ``update``: a
  server-terminal allocation has its tasks killed); allocations the servers no longer list are
  destroyed (killed, dir removed).
* **report**: runners push an ``AllocClientUpdate`` (status, description, task states); the
  latest per allocation is sent every ``SYNC_INTERVAL_S`` in one ``Node.UpdateAlloc`` batch
  (a failed send is retried with the next batch); the state writes queued before a batch are
  committed (durable) before it is sent.
* **restore**: at start, allocations in the state db get runners that ``adopt_task`` what the
  previous agent started (stored handles or recorded launches: same PIDs, no restart) and report
  their status at once; terminal ones are kept for their logs.
* **shutdown**: runners are cancelled without touching their tasks (the client unit runs with
  ``KillMode=process``); ``destroy=True`` (``-dev``) kills and removes every allocation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from nomadd.client.alloc_runner import AllocRunner
from nomadd.client.gc import run_gc
from nomadd.client.services import ServiceManager
from nomadd.drivers import DRIVERS
from nomadd.drivers.base import Driver, DriverConfig
from nomadd.helper.supervisor import Supervisor
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.errors import RPCError, UnknownAllocError
from nomadd.structs.requests import Method, Rep, Req
from nomadd.structs.requests.alloc import ALLOC_GET_ALLOCS, AllocsGetRequest
from nomadd.structs.requests.node import (
    NODE_GET_CLIENT_ALLOCS,
    NODE_UPDATE_ALLOC,
    AllocClientUpdate,
    NodeClientAllocsReply,
    NodeSpecificRequest,
    NodeUpdateAllocRequest,
)
from nomadd.structs.requests.services import SERVICE_UPSERT, ServiceUpsertRequest

if TYPE_CHECKING:
    from nomadd.client.config import ClientConfig
    from nomadd.client.state import ClientState
    from nomadd.structs.node import Node

logger = logging.getLogger(__name__)

__all__ = ["SYNC_INTERVAL_S", "AllocManager"]

SYNC_INTERVAL_S = 0.2  # Nomad's allocSyncIntv
WATCH_WAIT_S = 60.0  # blocking query wait per round (Nomad uses the server's default)
WATCH_RETRY_S = 1.0
WATCH_RETRY_MAX_S = 10.0


class ClientView(Protocol):
    """What the alloc manager uses of :class:`nomadd.client.client.Client` (which owns it)."""

    config: ClientConfig
    state: ClientState | None
    alloc_dir: str
    node: Node | None
    registered: bool

    @property
    def node_id(self) -> str: ...

    async def call(self, method: Method[Req, Rep], request: Req) -> Rep: ...


def make_drivers(client: ClientView) -> dict[str, Driver]:
    c = client.config
    out: dict[str, Driver] = {}
    for name, cls in DRIVERS.items():
        enabled: bool | None = None
        options: dict[str, str] = {}
        if name == "raw_exec":
            enabled = c.raw_exec_enabled
        elif name == "exec":
            enabled = c.exec_enabled
        options = {**c.plugin_config.get(name, {}), **(c.exec_options if name == "exec" else {})}
        out[name] = cls(DriverConfig(enabled=enabled, options=options))
    return {n: d for n, d in out.items() if d.enabled}


class AllocManager:
    def __init__(self, client: ClientView) -> None:
        self.client = client
        self.drivers = make_drivers(client)
        self.runners: dict[str, AllocRunner] = {}
        self._tasks = Supervisor("client-allocs")  # runners and kills; cancelled on shutdown
        self._run_tasks: dict[str, asyncio.Task[None]] = {}  # alloc ID -> its runner's task
        self._pending: dict[str, AllocClientUpdate] = {}
        self._wake_sync = asyncio.Event()
        self._db = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="client-state")
        self._index = 0
        self.first_sync = asyncio.Event()
        self.services = ServiceManager(self._send_services, self._node_ip)

    def count(self) -> int:
        return len(self.runners)

    # ---- plumbing -----------------------------------------------------------------------
    def _persist(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[None]:
        """Queue a ClientState write; one worker thread keeps them in order. The Future is done
        once the write and every write queued before it are committed."""
        return self._db.submit(_logged, fn, *args)

    def _report(self, alloc_id: str, update: AllocClientUpdate) -> None:
        self._pending[alloc_id] = update
        self._wake_sync.set()
        runner = self.runners.get(alloc_id)
        if runner is not None:
            self.services.on_update(runner.alloc, update)

    async def _send_services(self, req: ServiceUpsertRequest) -> None:
        await self.client.call(SERVICE_UPSERT, dataclasses.replace(req, node_id=self.client.node_id))

    def _node_ip(self) -> str:
        node = self.client.node
        return (node.attributes.get("unique.network.ip-address", "") if node else "") or "127.0.0.1"

    def _new_runner(self, alloc: Allocation, **restored: Any) -> AllocRunner:
        client = self.client
        assert client.state is not None
        return AllocRunner(
            alloc,
            alloc_root=client.alloc_dir,
            drivers=self.drivers,
            state=client.state,
            persist=self._persist,
            report=self._report,
            node_id=client.node_id,
            region=client.config.region,
            datacenter=client.config.datacenter,
            max_kill_timeout_s=client.config.max_kill_timeout,
            host_volumes=client.config.host_volumes,
            checks_passing=self.services.checks_passing,
            **restored,
        )

    def _start_runner(self, runner: AllocRunner) -> None:
        self.runners[runner.id] = runner
        self._run_tasks[runner.id] = self._tasks.spawn(self._run_runner(runner), f"alloc-{runner.id[:8]}")

    async def _run_runner(self, runner: AllocRunner) -> None:
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("alloc runner crashed alloc_id=%s", runner.id)

    # ---- main loop ----------------------------------------------------------------------
    async def run(self) -> None:
        await self._restore()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._sync_loop())
            tg.create_task(self._watch_loop())
            tg.create_task(run_gc(lambda: self.runners, self._destroy))

    async def _restore(self) -> None:
        state = self.client.state
        assert state is not None
        stored = await asyncio.to_thread(state.allocs)
        for alloc_id, data in stored.items():
            try:
                states = await asyncio.to_thread(state.task_states, alloc_id)
                handles = await asyncio.to_thread(state.task_handles, alloc_id)
                launches = await asyncio.to_thread(state.task_launches, alloc_id)
                alloc, st, hd = AllocRunner.restore(data, states, handles)
            except Exception:
                logger.exception("cannot restore allocation alloc_id=%s", alloc_id)
                continue
            logger.info("restoring allocation alloc_id=%s tasks=%d", alloc_id, len(hd))
            self._start_runner(
                self._new_runner(alloc, restored_states=st, restored_handles=hd, restored_launches=launches)
            )

    async def _watch_loop(self) -> None:
        while not self.client.registered:
            await asyncio.sleep(0.1)
        backoff = WATCH_RETRY_S
        while True:
            node = self.client.node
            assert node is not None
            req = NodeSpecificRequest(
                node_id=node.id,
                secret_id=node.secret_id,
                min_query_index=self._index,
                max_query_time_s=WATCH_WAIT_S,
                allow_stale=True,
            )
            try:
                reply = await self.client.call(NODE_GET_CLIENT_ALLOCS, req)
                await self._apply(reply)
                backoff = WATCH_RETRY_S
            except RPCError as err:
                logger.warning("failed to watch allocations err=%s retry_s=%.1f", err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, WATCH_RETRY_MAX_S)

    async def _apply(self, reply: NodeClientAllocsReply) -> None:
        index = reply.meta.index
        listed = reply.allocs
        if index < self._index:  # a stale server: start over
            self._index = 0
            return
        wanted = [
            alloc_id
            for alloc_id, modify in listed.items()
            if alloc_id not in self.runners or self.runners[alloc_id].alloc.alloc_modify_index < modify
        ]
        if wanted:
            # AllowStale may reach a server that has not applied the listing's index yet;
            # MinQueryIndex makes it wait until it has (Nomad's watchAllocations does the same)
            request = AllocsGetRequest(
                alloc_ids=tuple(wanted), allow_stale=True, min_query_index=index - 1, max_query_time_s=5.0
            )
            got = await self.client.call(ALLOC_GET_ALLOCS, request)
            stale = False
            for alloc in got.allocs:
                if alloc.alloc_modify_index < listed.get(alloc.id, 0):
                    stale = True  # still older than listed: ask again, do not move past it
                    continue
                self._take(alloc)
            if stale:
                logger.debug("allocations older than listed, asking again index=%d", index)
                return
        self._index = index
        for alloc_id in [a for a in self.runners if a not in listed]:
            logger.info("allocation removed by the servers, destroying alloc_id=%s", alloc_id)
            await self._destroy(alloc_id)
        self.first_sync.set()

    def _take(self, alloc: Allocation) -> None:
        runner = self.runners.get(alloc.id)
        if runner is None:
            if alloc.server_terminal() or alloc.client_terminal():
                return  # stopped before it ever ran here (or already done elsewhere)
            logger.info(
                "running allocation alloc_id=%s job=%s group=%s", alloc.id, alloc.job_id, alloc.task_group
            )
            self._start_runner(self._new_runner(alloc))
            return
        if alloc.client_status == AllocClientStatus.UNKNOWN and not runner.terminal():
            # the servers marked it unknown while this node was disconnected: it ran on; say so
            logger.info("reconnected allocation reports its status alloc_id=%s", alloc.id)
            runner.report_status()
        stop = runner.update(alloc)
        self.services.refresh(runner.alloc)  # in-place service changes; a stop deregisters first
        if stop:
            logger.info("stopping allocation alloc_id=%s desired=%s", alloc.id, alloc.desired_status)
            reason = alloc.desired_description or "alloc stopped"
            self._tasks.spawn(runner.kill(reason), f"alloc-kill-{alloc.id[:8]}")

    async def _destroy(self, alloc_id: str) -> None:
        runner = self.runners.pop(alloc_id, None)
        if runner is None:
            return
        task = self._run_tasks.pop(alloc_id, None)
        await runner.destroy()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pending.pop(alloc_id, None)
        self.services.forget(alloc_id)

    async def _sync_loop(self) -> None:
        while True:
            await self._wake_sync.wait()
            await asyncio.sleep(SYNC_INTERVAL_S)  # batch what arrives meanwhile
            self._wake_sync.clear()
            batch, self._pending = self._pending, {}
            if not batch or not self.client.registered:
                self._pending = {**batch, **self._pending}
                if self._pending:  # not registered yet: look again soon, not at the next change
                    self._wake_sync.set()
                continue
            # what the servers are told is on disk first (ClientState's durability rules)
            await asyncio.wrap_future(self._db.submit(_no_op))
            try:
                await self.client.call(NODE_UPDATE_ALLOC, self._update_request(batch.values()))
            except UnknownAllocError:
                logger.debug("alloc update for an allocation the servers no longer have")
            except RPCError as err:
                logger.warning("failed to update allocations err=%s count=%d", err, len(batch))
                self._pending = {**batch, **self._pending}
                self._wake_sync.set()
                await asyncio.sleep(WATCH_RETRY_S)

    def _update_request(self, updates: Iterable[AllocClientUpdate]) -> NodeUpdateAllocRequest:
        node = self.client.node
        assert node is not None
        return NodeUpdateAllocRequest(node_id=node.id, secret_id=node.secret_id, allocs=tuple(updates))

    # ---- API helpers ---------------------------------------------------------------------
    def get(self, alloc_id: str) -> AllocRunner | None:
        return self.runners.get(alloc_id)

    async def collect(self, alloc_id: str) -> bool:
        """Destroy a terminal allocation now (``/v1/client/allocation/:id/gc``); False when it
        still runs (or is not here)."""
        runner = self.runners.get(alloc_id)
        if runner is None or not runner.terminal():
            return False
        logger.info("garbage collecting allocation alloc_id=%s reason=api", alloc_id)
        await self._destroy(alloc_id)
        return True

    async def collect_all(self) -> list[str]:
        """Destroy every terminal allocation (``/v1/client/gc``); their IDs."""
        done = [a for a, r in self.runners.items() if r.terminal()]
        for alloc_id in done:
            await self.collect(alloc_id)
        return done

    async def shutdown(self, *, destroy: bool) -> None:
        if destroy:
            for alloc_id in list(self.runners):
                logger.info("dev mode: destroying allocation alloc_id=%s", alloc_id)
                with contextlib.suppress(Exception):
                    await self._destroy(alloc_id)
            if self._pending and self.client.registered:  # last status to the (local) servers
                req = self._update_request(self._pending.values())
                with contextlib.suppress(RPCError, TimeoutError):
                    await asyncio.wait_for(self.client.call(NODE_UPDATE_ALLOC, req), 2.0)
        await self._tasks.aclose()
        await self.services.aclose()
        await asyncio.to_thread(self._db.shutdown, True)


def _logged(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        logger.exception("client state write failed fn=%s", getattr(fn, "__name__", fn))
        raise  # for a caller that awaits the write (nobody else looks at its Future)


def _no_op() -> None:
    """A barrier in the state-writer queue."""

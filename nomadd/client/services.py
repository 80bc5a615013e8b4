"""This client's side of nomadd's service catalog (Nomad's client/serviceregistration/nsd and
its check runner; docs/services.md).

:class:`ServiceManager` sees every status report of every allocation (``on_update``). While an
allocation runs, its services are registered — group services once the allocation is running,
a task's services once that task is running — with the node's address for the port and the
port the scheduler assigned to the service's ``PortLabel``; when it stops they are deregistered.
Each report sends the allocation's whole set (``ServiceRegistration.Upsert``), and only when the
set changed; a failed send is retried. The checks of registered services run every
``Interval`` with ``Timeout`` (tcp: connect; http: a GET that must answer 2xx); their latest
results are :meth:`ServiceManager.check_results` (``/v1/client/allocation/:id/checks``) and
:meth:`ServiceManager.checks_passing`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nomadd.helper.supervisor import Supervisor
from nomadd.structs.alloc import Allocation, AllocClientStatus, TaskStatus
from nomadd.structs.errors import RPCError
from nomadd.structs.requests.node import AllocClientUpdate
from nomadd.structs.requests.services import ServiceUpsertRequest
from nomadd.structs.services import Service, ServiceCheck, ServiceRegistration

logger = logging.getLogger(__name__)

__all__ = ["CheckResult", "ServiceManager", "alloc_ports"]

RETRY_S = 1.0
NS = 1_000_000_000

Send = Callable[[ServiceUpsertRequest], Awaitable[object]]


def alloc_ports(alloc: Allocation, task: str) -> list[tuple[str, str, int, int]]:
    """(label, host IP, host port, port inside) of the group's ports and ``task``'s own."""
    res = alloc.allocated_resources
    out = [(p.label, p.host_ip, p.value, p.to) for p in res.shared.ports]
    own = res.tasks.get(task)
    for net in own.networks if own is not None else ():
        out.extend((p.label, net.ip, p.value, p.to) for p in (*net.reserved_ports, *net.dynamic_ports))
    return out


def _resolve(alloc: Allocation, task: str, label: str, node_ip: str) -> tuple[str, int]:
    """(address, port) of a port label (a number is a literal port on the node's address)."""
    if label.isdigit():
        return node_ip, int(label)
    for name, ip, value, _ in alloc_ports(alloc, task):
        if name == label:
            return ip or node_ip, value
    return node_ip, 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """One check's latest result (Nomad's structs.CheckQueryResult)."""

    id: str
    check: str
    service: str
    group: str
    task: str
    status: str = "pending"  # pending | success | failure
    status_code: int = 0
    output: str = ""
    timestamp: int = 0

    def to_api(self) -> dict[str, object]:
        return {
            "ID": self.id,
            "Check": self.check,
            "Group": self.group,
            "Task": self.task,
            "Service": self.service,
            "Mode": "healthiness",
            "Status": self.status,
            "StatusCode": self.status_code,
            "Output": self.output,
            "Timestamp": self.timestamp,
        }


async def run_check(check: ServiceCheck, address: str, port: int) -> tuple[bool, int, str]:
    """One run of ``check``: (passed, HTTP status code, output)."""
    timeout = check.timeout / NS
    try:
        if check.type == "tcp":
            _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
            writer.close()
            return True, 0, f"tcp connect {address}:{port} ok"
        return await asyncio.wait_for(_http_get(check, address, port), timeout)
    except TimeoutError:
        return False, 0, f"timed out after {timeout:g}s"
    except (OSError, ValueError) as err:
        return False, 0, str(err)


async def _http_get(check: ServiceCheck, address: str, port: int) -> tuple[bool, int, str]:
    import aiohttp

    host = f"[{address}]" if ":" in address else address
    url = f"{check.protocol or 'http'}://{host}:{port}{urllib.parse.quote(check.path, safe='/?=&%')}"
    ssl = not check.tls_skip_verify
    async with (
        aiohttp.ClientSession() as session,
        session.request(check.method or "GET", url, ssl=ssl) as resp,
    ):
        body = (await resp.content.read(4096)).decode(errors="replace")
        return 200 <= resp.status < 300, resp.status, f"HTTP {resp.status}: {body[:512]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Wanted:
    """What an allocation should have registered: its registrations and their checks."""

    regs: tuple[ServiceRegistration, ...] = ()
    checks: tuple[
        tuple[str, ServiceCheck, str, str, int, str, str], ...
    ] = ()  # id, check, svc, addr, port, group, task


class ServiceManager:
    def __init__(self, send: Send, node_ip: Callable[[], str]) -> None:
        self._send = send
        self._node_ip = node_ip
        self._wanted: dict[str, _Wanted] = {}
        self._last: dict[str, AllocClientUpdate] = {}  # each allocation's latest report
        self._sent: dict[str, tuple[ServiceRegistration, ...]] = {}
        self._syncing: set[str] = set()
        self._check_tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._results: dict[str, dict[str, CheckResult]] = {}
        self._tasks = Supervisor("client-services")

    # ---- what the allocation reports ---------------------------------------------------------
    def on_update(self, alloc: Allocation, update: AllocClientUpdate) -> None:
        self._last[alloc.id] = update
        wanted = self._wanted_for(alloc, update)
        if wanted == self._wanted.get(alloc.id, _Wanted()):
            return
        self._wanted[alloc.id] = wanted
        self._restart_checks(alloc.id, wanted)
        if alloc.id not in self._syncing:
            self._syncing.add(alloc.id)
            self._tasks.spawn(self._sync(alloc.id), f"services-{alloc.id[:8]}")

    def refresh(self, alloc: Allocation) -> None:
        """The servers sent a newer version of the allocation (an in-place update of its
        services, or a stop: its services are deregistered before its tasks are killed)."""
        last = self._last.get(alloc.id)
        if last is not None:
            self.on_update(alloc, last)

    def forget(self, alloc_id: str) -> None:
        """The allocation was destroyed here: stop its checks (its services went with its stop)."""
        self._stop_checks(alloc_id)
        self._results.pop(alloc_id, None)
        self._last.pop(alloc_id, None)
        if alloc_id not in self._syncing:
            self._wanted.pop(alloc_id, None)
            self._sent.pop(alloc_id, None)

    def _wanted_for(self, alloc: Allocation, update: AllocClientUpdate) -> _Wanted:
        job = alloc.job
        group = next((g for g in job.task_groups if g.name == alloc.task_group), None) if job else None
        if group is None or alloc.server_terminal() or update.client_status != AllocClientStatus.RUNNING:
            return _Wanted()
        node_ip = self._node_ip()
        regs: list[ServiceRegistration] = []
        checks: list[tuple[str, ServiceCheck, str, str, int, str, str]] = []
        owners: list[tuple[str, Service]] = [("", s) for s in group.services]
        for task in group.tasks:
            st = (update.task_states or {}).get(task.name)
            if st is not None and st.state == TaskStatus.RUNNING:
                owners.extend((task.name, s) for s in task.services)
        for task_name, svc in owners:
            port_task = task_name or svc.task_name
            address, port = (
                _resolve(alloc, port_task, svc.port_label, node_ip) if svc.port_label else (node_ip, 0)
            )
            address = svc.address or address
            kind = "task" if task_name else "group"
            reg_id = f"_nomad-{kind}-{alloc.id}-{task_name or group.name}-{svc.name}-{svc.port_label}"
            regs.append(
                ServiceRegistration(
                    id=reg_id, service_name=svc.name, tags=svc.tags, address=address, port=port
                )
            )
            for check in svc.checks:
                c_address, c_port = address, port
                if check.port_label:
                    c_address, c_port = _resolve(alloc, port_task, check.port_label, node_ip)
                check_id = f"{reg_id}-{check.name}"
                checks.append((check_id, check, svc.name, c_address, c_port, group.name, task_name))
        return _Wanted(regs=tuple(regs), checks=tuple(checks))

    # ---- registration ------------------------------------------------------------------------
    async def _sync(self, alloc_id: str) -> None:
        """Send the allocation's wanted set until the servers have the latest one."""
        try:
            while True:
                wanted = self._wanted.get(alloc_id, _Wanted()).regs
                if self._sent.get(alloc_id, ()) == wanted:
                    break
                try:
                    await self._send(ServiceUpsertRequest(alloc_id=alloc_id, registrations=wanted))
                except RPCError as err:
                    if err.code == 404:  # the servers no longer have the allocation
                        break
                    logger.warning("service registration failed alloc_id=%s err=%s", alloc_id, err)
                    await asyncio.sleep(RETRY_S)
                    continue
                logger.info("services synced alloc_id=%s count=%d", alloc_id, len(wanted))
                self._sent[alloc_id] = wanted
        finally:
            self._syncing.discard(alloc_id)
        if not self._wanted.get(alloc_id, _Wanted()).regs:
            self._wanted.pop(alloc_id, None)
            self._sent.pop(alloc_id, None)

    # ---- checks ------------------------------------------------------------------------------
    def _stop_checks(self, alloc_id: str) -> None:
        for task in self._check_tasks.pop(alloc_id, []):
            task.cancel()

    def _restart_checks(self, alloc_id: str, wanted: _Wanted) -> None:
        self._stop_checks(alloc_id)
        old = self._results.get(alloc_id, {})
        results: dict[str, CheckResult] = {}
        tasks = []
        for check_id, check, svc, address, port, group, task in wanted.checks:
            results[check_id] = old.get(check_id) or CheckResult(
                id=check_id,
                check=check.name,
                service=svc,
                group=group,
                task=task,
                status="success" if check.initial_status == "passing" else "pending",
            )
            tasks.append(
                self._tasks.spawn(
                    self._check_loop(alloc_id, check_id, check, address, port), f"check-{check_id}"
                )
            )
        self._results[alloc_id] = results
        self._check_tasks[alloc_id] = tasks

    async def _check_loop(
        self, alloc_id: str, check_id: str, check: ServiceCheck, address: str, port: int
    ) -> None:
        while True:
            ok, code, output = await run_check(check, address, port)
            results = self._results.get(alloc_id)
            if results is None or check_id not in results:
                return
            prev = results[check_id]
            status = "success" if ok else "failure"
            if prev.status != status:
                logger.info("check status alloc_id=%s check=%s status=%s", alloc_id, check.name, status)
            results[check_id] = CheckResult(
                id=check_id,
                check=prev.check,
                service=prev.service,
                group=prev.group,
                task=prev.task,
                status=status,
                status_code=code,
                output=output,
                timestamp=int(time.time()),
            )
            await asyncio.sleep(check.interval / NS)

    def check_results(self, alloc_id: str) -> dict[str, CheckResult]:
        """The latest result of each check of the allocation's registered services."""
        return dict(self._results.get(alloc_id, {}))

    def checks_passing(self, alloc_id: str) -> bool | None:
        """None: the allocation has no checks; else whether every check's last run passed."""
        results = self._results.get(alloc_id)
        if not results:
            return None
        return all(r.status == "success" for r in results.values())

    async def aclose(self) -> None:
        await self._tasks.aclose()

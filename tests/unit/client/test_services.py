"""The client's service manager: registers a running allocation's services with the assigned
port, sends the set only when it changes, deregisters on stop, retries a failed send, and
runs tcp/http checks whose results feed ``checks_passing``."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nomadd.client.services import ServiceManager
from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus, TaskState, TaskStatus
from nomadd.structs.codec import from_api
from nomadd.structs.errors import RPCError
from nomadd.structs.job import Job
from nomadd.structs.requests.node import AllocClientUpdate
from nomadd.structs.requests.services import ServiceUpsertRequest
from nomadd.structs.resources import AllocatedPortMapping, AllocatedResources, AllocatedSharedResources

S = 1_000_000_000


def _alloc(port: int, checks: list[dict[str, Any]]) -> Allocation:
    raw = {
        "ID": "shop",
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
                "Services": [{"Name": "front", "PortLabel": "http", "Tags": ["x"], "Checks": checks}],
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "raw_exec",
                        "Services": [{"Name": "api", "PortLabel": "http"}],
                    }
                ],
            }
        ],
    }
    job = from_api(Job, raw, path="Job").canonicalize()
    ports = (AllocatedPortMapping(label="http", value=port, host_ip="127.0.0.1"),)
    return Allocation(
        id="a-1",
        job=job,
        job_id="shop",
        task_group="g",
        allocated_resources=AllocatedResources(shared=AllocatedSharedResources(ports=ports)),
    )


def _update(status: AllocClientStatus, task: TaskStatus) -> AllocClientUpdate:
    return AllocClientUpdate(id="a-1", client_status=status, task_states={"t": TaskState(state=task)})


async def _until(pred: Callable[[], bool]) -> None:
    for _ in range(200):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def _run(body: Callable[[ServiceManager, list[ServiceUpsertRequest], list[int]], Awaitable[None]]) -> None:
    async def main() -> None:
        sent: list[ServiceUpsertRequest] = []
        failures = [0]

        async def send(req: ServiceUpsertRequest) -> None:
            if failures[0]:
                failures[0] -= 1
                raise RPCError("no leader", code=500)
            sent.append(req)

        mgr = ServiceManager(send, lambda: "10.0.0.9")
        try:
            await body(mgr, sent, failures)
        finally:
            await mgr.aclose()

    asyncio.run(main())


def test_register_once_then_deregister_on_stop() -> None:
    async def body(mgr: ServiceManager, sent: list[ServiceUpsertRequest], failures: list[int]) -> None:
        alloc = _alloc(25000, [])
        mgr.on_update(alloc, _update(AllocClientStatus.PENDING, TaskStatus.PENDING))
        await asyncio.sleep(0.05)
        assert sent == []  # nothing runs yet
        failures[0] = 1  # the first send fails: retried
        mgr.on_update(alloc, _update(AllocClientStatus.RUNNING, TaskStatus.RUNNING))
        mgr.on_update(alloc, _update(AllocClientStatus.RUNNING, TaskStatus.RUNNING))  # same set
        await _until(lambda: len(sent) == 1)
        regs = {r.service_name: r for r in sent[0].registrations}
        assert set(regs) == {"front", "api"}
        assert (regs["front"].address, regs["front"].port, regs["front"].tags) == ("127.0.0.1", 25000, ("x",))
        assert regs["api"].id.startswith("_nomad-task-a-1-t-api")
        mgr.on_update(alloc, _update(AllocClientStatus.COMPLETE, TaskStatus.DEAD))
        await _until(lambda: len(sent) == 2)
        assert sent[1].registrations == () and sent[1].alloc_id == "a-1"
        await asyncio.sleep(0.1)
        assert len(sent) == 2

    _run(body)


def test_checks_feed_checks_passing() -> None:
    async def body(mgr: ServiceManager, sent: list[ServiceUpsertRequest], failures: list[int]) -> None:
        healthy = [True]

        async def health(_: web.Request) -> web.Response:
            return web.Response(status=200 if healthy[0] else 503, text="ok")

        app = web.Application()
        app.router.add_get("/health", health)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            checks = [
                {"Name": "h", "Type": "http", "Path": "/health", "Interval": S, "Timeout": S},
                {"Name": "c", "Type": "tcp", "Interval": S, "Timeout": S},
            ]
            alloc = _alloc(port, checks)
            assert mgr.checks_passing("a-1") is None
            mgr.on_update(alloc, _update(AllocClientStatus.RUNNING, TaskStatus.RUNNING))
            await _until(lambda: mgr.checks_passing("a-1") is True)
            results = {r.check: r for r in mgr.check_results("a-1").values()}
            assert results["h"].status_code == 200 and results["c"].status == "success"
            assert results["h"].to_api()["Mode"] == "healthiness"
            healthy[0] = False
            await _until(lambda: mgr.checks_passing("a-1") is False)
            assert {r.check: r.status for r in mgr.check_results("a-1").values()} == {
                "h": "failure",
                "c": "success",
            }
            mgr.on_update(alloc, _update(AllocClientStatus.COMPLETE, TaskStatus.DEAD))
            assert mgr.checks_passing("a-1") is None
        finally:
            await runner.cleanup()

    _run(body)


def test_stop_decision_deregisters_before_the_tasks_die() -> None:
    async def body(mgr: ServiceManager, sent: list[ServiceUpsertRequest], failures: list[int]) -> None:
        alloc = _alloc(25000, [])
        mgr.on_update(alloc, _update(AllocClientStatus.RUNNING, TaskStatus.RUNNING))
        await _until(lambda: len(sent) == 1)
        mgr.refresh(dataclasses.replace(alloc, desired_status=AllocDesiredStatus.STOP))
        await _until(lambda: len(sent) == 2)
        assert sent[1].registrations == ()

    _run(body)

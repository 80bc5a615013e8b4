"""Disconnect flow on a one-process fake server (real FSM, store, node endpoint, workers):
heartbeat expiry -> node disconnected -> allocation unknown + replacement -> reconnect keeps the
original; a second expiry -> node down -> the unknown allocation lost."""

from __future__ import annotations

import asyncio
from typing import Any

from nomadd.server.state import store_allocs, store_evals, store_nodes
from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus, TaskState, TaskStatus
from nomadd.structs.eval import EvalTrigger
from nomadd.structs.node import NodeStatus
from tests.unit.server.fakes import FakeServer, api_job, wait_until

_RUNNING = {"t": TaskState(state=TaskStatus.RUNNING, started_at="2026-01-01T00:00:00Z")}


def _allocs(server: FakeServer) -> list[Allocation]:
    return store_allocs.list_allocs(server.store.snapshot())


def _status(server: FakeServer, node_id: str) -> NodeStatus:
    node = store_nodes.get(server.store.snapshot(), node_id)
    assert node is not None
    return node.status


async def _setup(server: FakeServer) -> tuple[str, str, Allocation]:
    n1 = await server.add_node()
    for c in server.components:
        c.set_enabled(True)
    server.scheduling.set_enabled(True)
    job = api_job(count=1)
    job["TaskGroups"][0]["MaxClientDisconnect"] = 30 * 1_000_000_000
    await server.register_job(job)
    await wait_until(lambda: len(_allocs(server)) == 1, what="placed")
    [original] = _allocs(server)
    await server.update_allocs([original], AllocClientStatus.RUNNING, task_states=_RUNNING)
    n2 = await server.add_node()
    await server.nodes.invalidate(n1.id)  # n1's heartbeat timer fired
    assert _status(server, n1.id) == NodeStatus.DISCONNECTED
    assert server.nodes.timers.active() >= 1  # armed again for the window

    def replaced() -> bool:
        by_id = {a.id: a for a in _allocs(server)}
        return by_id[original.id].client_status == AllocClientStatus.UNKNOWN and len(by_id) == 2

    await wait_until(replaced, what="original unknown and a replacement")
    return n1.id, n2.id, original


def _run(body: Any) -> None:
    async def main() -> None:
        server = FakeServer()
        try:
            await body(server)
        finally:
            server.scheduling.set_enabled(False)
            for c in server.components:
                c.set_enabled(False)

    asyncio.run(main())


def test_disconnected_node_then_reconnect_keeps_the_original() -> None:
    async def body(server: FakeServer) -> None:
        n1, n2, original = await _setup(server)
        [repl] = [a for a in _allocs(server) if a.id != original.id]
        assert repl.node_id == n2 and repl.previous_allocation == original.id
        by_id = {a.id: a for a in _allocs(server)}
        assert by_id[original.id].desired_status == AllocDesiredStatus.RUN
        followup = by_id[original.id].follow_up_eval_id  # the window's end is scheduled
        evaluation = store_evals.get_eval(server.store.snapshot(), followup)
        assert evaluation is not None and evaluation.triggered_by == EvalTrigger.MAX_DISCONNECT_TIMEOUT
        assert evaluation.wait_until
        await server.update_allocs([repl], AllocClientStatus.RUNNING, task_states=_RUNNING)
        await server.set_node_status(n1, NodeStatus.READY)
        await server.update_allocs([original], AllocClientStatus.RUNNING, task_states=_RUNNING)

        def kept() -> bool:
            by_id = {a.id: a for a in _allocs(server)}
            return by_id[repl.id].desired_status == AllocDesiredStatus.STOP

        await wait_until(kept, what="replacement stopped")
        by_id = {a.id: a for a in _allocs(server)}
        assert by_id[original.id].desired_status == AllocDesiredStatus.RUN
        assert by_id[original.id].client_status == AllocClientStatus.RUNNING

    _run(body)


def test_second_expiry_makes_the_node_down_and_the_allocation_lost() -> None:
    async def body(server: FakeServer) -> None:
        n1, _, original = await _setup(server)
        await server.nodes.invalidate(n1)  # the window's timer fired
        assert _status(server, n1) == NodeStatus.DOWN

        def lost() -> bool:
            by_id = {a.id: a for a in _allocs(server)}
            return by_id[original.id].client_status == AllocClientStatus.LOST

        await wait_until(lost, what="original lost")
        live = [a for a in _allocs(server) if not a.terminal()]
        assert len(live) == 1 and live[0].id != original.id  # the replacement only, not a second one

    _run(body)

"""One apply path: the leader's store equals every follower's, table by table, field by field.

The leader (:class:`FakeServer`) applies the entries it proposes from the proposer's own structs
(``FSM.expect``: no decode); a follower (``FakeServer.follower()``) decodes every entry from its
bytes into a fresh FSM. Random mixed workloads (hypothesis, derandomized, bounded) drive the
real endpoints with the scheduler on, so job registers, plans, eval updates, node changes,
client alloc updates, alloc stops, variables with check-and-set and forced GC all reach Raft. Afterwards the
two stores must hold the same tables, the same rows and the same table indexes; on a difference
the first differing field path is reported.

This catches an apply function that reads something only the proposer has (the clock: the
follower replays with its clock an hour ahead; a local object the entry does not carry), a
proposer that mutates an entry it already handed to Raft, and an entry whose encoding loses
what the in-memory struct holds.

The workload drivers below (``_register_node`` ... ``_gc``) are the only calls into the RPC API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nomadd.server.fsm import FSM
from nomadd.server.state import store_allocs, store_jobs, store_nodes, store_variables
from nomadd.server.state.store import StateStore
from nomadd.structs.alloc import AllocClientStatus
from nomadd.structs.errors import NomaddError
from nomadd.structs.node import DrainStrategy, Node, NodeEligibility, NodeStatus
from nomadd.structs.requests import Envelope
from nomadd.structs.requests.alloc import ALLOC_STOP, AllocSpecificRequest
from nomadd.structs.requests.node import (
    NODE_UPDATE_DRAIN,
    NODE_UPDATE_ELIGIBILITY,
    NodeUpdateDrainRequest,
    NodeUpdateEligibilityRequest,
)
from nomadd.structs.requests.system import SYSTEM_GARBAGE_COLLECT
from nomadd.structs.requests.variables import VARIABLES_APPLY, VariablesApplyRequest, VarOp
from tests.unit.server.fakes import FakeServer, api_job

SETTLE_TIMEOUT_S = 10.0  # how long the scheduler may take to drain its evals after a workload
QUIET_S = 0.05
LATER_S = 3600  # no new entry for this long (and an empty broker): the leader is idle

# ---- comparing two stores --------------------------------------------------------------------


def first_difference(a: object, b: object, path: str = "") -> str | None:
    """The path of the first field where ``a`` and ``b`` differ (``None`` when equal).

    Types count: a tuple is not a list, an enum member is not its string.
    """
    where = path or "<root>"
    if type(a) is not type(b) and not (isinstance(a, Mapping) and isinstance(b, Mapping)):
        return f"{where}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            found = first_difference(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
            if found is not None:
                return found
        return None
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping)
        if list(a) != list(b):
            return f"{where}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"
        for k in a:
            found = first_difference(a[k], b[k], f"{path}[{k!r}]")
            if found is not None:
                return found
        return None
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list))
        if len(a) != len(b):
            return f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def store_difference(leader: StateStore, follower: StateStore) -> str | None:
    """The first difference between two stores: tables, rows (field by field), indexes."""
    ls, fs = leader.snapshot(), follower.snapshot()
    if ls.table_names() != fs.table_names():
        return f"tables: leader {ls.table_names()} != follower {fs.table_names()}"
    for name in ls.table_names():
        lt, ft = ls.table(name), fs.table(name)
        if set(lt) != set(ft):
            return f"{name}: rows only on the leader {sorted(set(lt) - set(ft))}, only on the follower {sorted(set(ft) - set(lt))}"
        for key in sorted(lt):
            found = first_difference(lt[key], ft[key])
            if found is not None:
                return f"{name}[{key!r}]{found.removeprefix('<root>')}"
    if dict(ls.indexes()) != dict(fs.indexes()):
        return f"table indexes: leader {dict(ls.indexes())} != follower {dict(fs.indexes())}"
    if ls.index != fs.index:
        return f"latest index: leader {ls.index} != follower {fs.index}"
    return None


def test_first_difference_names_the_field() -> None:
    @dataclasses.dataclass(frozen=True)
    class Inner:
        xs: tuple[int, ...]

    @dataclasses.dataclass(frozen=True)
    class Outer:
        name: str
        inner: Inner
        meta: Mapping[str, str]

    a = Outer(name="a", inner=Inner(xs=(1, 2)), meta={"k": "v"})
    assert first_difference(a, a) is None
    assert first_difference(a, dataclasses.replace(a, inner=Inner(xs=(1, 3)))) == ".inner.xs[1]: 2 != 3"
    assert first_difference(a, dataclasses.replace(a, meta={"k": "w"})) == ".meta['k']: 'v' != 'w'"
    assert "tuple" in (first_difference((1,), [1]) or "")


# ---- the workload drivers (the only calls into the RPC API) -----------------------------------


async def _register_node(server: FakeServer) -> Node:
    return await server.add_node()


async def _node_status(server: FakeServer, node_id: str, status: NodeStatus) -> None:
    await server.set_node_status(node_id, status)


async def _node_eligibility(server: FakeServer, node_id: str, eligible: bool) -> None:
    elig = NodeEligibility.ELIGIBLE if eligible else NodeEligibility.INELIGIBLE
    await server.rpc(NODE_UPDATE_ELIGIBILITY, NodeUpdateEligibilityRequest(node_id=node_id, eligibility=elig))


async def _node_drain(server: FakeServer, node_id: str, deadline_s: int | None) -> None:
    """``deadline_s``: None stops a drain (and marks the node eligible), -1 forces one now."""
    if deadline_s is None:
        req = NodeUpdateDrainRequest(node_id=node_id, drain_strategy=None, mark_eligible=True)
    else:
        strategy = DrainStrategy(deadline=deadline_s * 10**9 if deadline_s > 0 else deadline_s)
        req = NodeUpdateDrainRequest(node_id=node_id, drain_strategy=strategy)
    await server.rpc(NODE_UPDATE_DRAIN, req)


async def _alloc_client_update(server: FakeServer, alloc_id: str, status: AllocClientStatus) -> None:
    snap = server.store.snapshot()
    alloc = store_allocs.get_alloc(snap, alloc_id)
    if alloc is not None and store_nodes.get(snap, alloc.node_id) is not None:  # GC may drop a node
        await server.update_allocs([alloc], status)


async def _stop_alloc(server: FakeServer, alloc_id: str) -> None:
    await server.rpc(ALLOC_STOP, AllocSpecificRequest(alloc_id=alloc_id))


async def _register_job(server: FakeServer, job_id: str, count: int, job_type: str) -> None:
    await server.register_job(api_job(job_id, count=count if job_type != "system" else 1, job_type=job_type))


async def _deregister_job(server: FakeServer, job_id: str, purge: bool) -> None:
    await server.deregister_job(job_id, purge=purge)


async def _set_var(server: FakeServer, path: str, value: str, cas: int | None) -> None:
    req = VariablesApplyRequest(op=VarOp.SET, path=path, items={"v": value, "p": path}, cas=cas)
    await server.rpc(VARIABLES_APPLY, req)


async def _delete_var(server: FakeServer, path: str, cas: int | None) -> None:
    await server.rpc(VARIABLES_APPLY, VariablesApplyRequest(op=VarOp.DELETE, path=path, cas=cas))


async def _gc(server: FakeServer) -> None:
    await server.rpc(SYSTEM_GARBAGE_COLLECT, Envelope())


# ---- workloads ---------------------------------------------------------------------------------

JOBS = ("web", "api", "batch-1", "sys")
PATHS = ("a", "a/b", "c")
_pick = st.integers(min_value=0, max_value=7)

OPS = st.one_of(
    st.tuples(st.just("node")),
    st.tuples(st.just("node_status"), _pick, st.sampled_from([NodeStatus.DOWN, NodeStatus.READY])),
    st.tuples(st.just("eligibility"), _pick, st.booleans()),
    st.tuples(st.just("drain"), _pick, st.sampled_from([None, -1, 3600])),
    st.tuples(st.just("job"), st.sampled_from(JOBS), st.integers(min_value=0, max_value=4)),
    st.tuples(st.just("stop"), _pick, st.booleans()),
    st.tuples(
        st.just("alloc"),
        _pick,
        st.sampled_from(
            [
                AllocClientStatus.RUNNING,
                AllocClientStatus.COMPLETE,
                AllocClientStatus.FAILED,
                AllocClientStatus.LOST,
            ]
        ),
    ),
    st.tuples(st.just("alloc_stop"), _pick),
    st.tuples(
        st.just("var_set"),
        st.sampled_from(PATHS),
        st.text("xyz", max_size=3),
        st.sampled_from(["none", "0", "current", "stale"]),
    ),
    st.tuples(
        st.just("var_delete"), st.sampled_from(PATHS), st.sampled_from(["none", "0", "current", "stale"])
    ),
    st.tuples(st.just("gc")),
    st.tuples(st.just("settle")),
)


def _job_type(job_id: str) -> str:
    return "system" if job_id == "sys" else "batch" if job_id.startswith("batch") else "service"


def _cas(server: FakeServer, path: str, mode: str) -> int | None:
    current = store_variables.get(server.store.snapshot(), "default", path)
    index = current.modify_index if current is not None else 0
    return {"none": None, "0": 0, "current": index, "stale": max(0, index - 1)}[mode]


async def _run_op(server: FakeServer, nodes: list[str], op: tuple[Any, ...]) -> None:
    kind = op[0]
    snap = server.store.snapshot()
    allocs = sorted(a.id for a in store_allocs.list_allocs(snap))
    jobs = sorted(j.id for j in store_jobs.list_jobs(snap))
    if kind == "node":
        nodes.append((await _register_node(server)).id)
    elif kind == "node_status" and nodes:
        await _node_status(server, nodes[op[1] % len(nodes)], op[2])
    elif kind == "eligibility" and nodes:
        await _node_eligibility(server, nodes[op[1] % len(nodes)], op[2])
    elif kind == "drain" and nodes:
        await _node_drain(server, nodes[op[1] % len(nodes)], op[2])
    elif kind == "job":
        await _register_job(server, op[1], op[2], _job_type(op[1]))
    elif kind == "stop" and jobs:
        await _deregister_job(server, jobs[op[1] % len(jobs)], op[2])
    elif kind == "alloc" and allocs:
        await _alloc_client_update(server, allocs[op[1] % len(allocs)], op[2])
    elif kind == "alloc_stop" and allocs:
        await _stop_alloc(server, allocs[op[1] % len(allocs)])
    elif kind == "var_set":
        await _set_var(server, op[1], op[2] or "-", _cas(server, op[1], op[3]))
    elif kind == "var_delete":
        await _delete_var(server, op[1], _cas(server, op[1], op[2]))
    elif kind == "gc":
        await _gc(server)
    elif kind == "settle":
        await _settle(server)


async def _settle(server: FakeServer) -> None:
    """Wait until the scheduler has no eval ready or in work and no entry came for ``QUIET_S``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    seen = -1
    while loop.time() < deadline:
        broker = server.scheduling.broker  # delayed evals (reschedules) may wait for minutes
        busy = broker.ready_count() + broker.unacked_count() > 0
        if not busy and seen == len(server.raft.entries):
            return
        seen = len(server.raft.entries)
        await asyncio.sleep(QUIET_S)
    raise AssertionError(f"scheduler did not settle in {SETTLE_TIMEOUT_S}s: {server.scheduling.stats()}")


async def _workload(ops: list[tuple[Any, ...]]) -> FakeServer:
    server = FakeServer()
    server.scheduling.set_enabled(True)
    nodes: list[str] = []
    try:
        for op in ops:
            try:
                await _run_op(server, nodes, op)
            except NomaddError:
                pass  # a rule rejection (unknown job, node, CAS on a missing variable): nothing applied
        await _settle(server)
    finally:
        server.scheduling.set_enabled(False)
        await asyncio.sleep(0)
    return server


def _follower_later(server: FakeServer) -> FSM:
    """The follower replays the log as if ``LATER_S`` later (a follower that catches up, or a
    restart replaying the log): an apply that reads the clock gives other rows than the leader."""
    later = mock.patch("time.time", return_value=time.time() + LATER_S)
    later_ns = mock.patch("time.time_ns", return_value=time.time_ns() + LATER_S * 10**9)
    with later, later_ns:
        return server.follower()


@pytest.mark.slow
@settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(OPS, min_size=5, max_size=30))
def test_leader_and_follower_stores_are_equal(ops: list[tuple[Any, ...]]) -> None:
    server = asyncio.run(_workload([("node",), ("job", "web", 2), *ops]))
    follower = _follower_later(server)
    found = store_difference(server.store, follower.store)
    assert found is None, f"leader and follower differ after {len(server.raft.entries)} entries: {found}"

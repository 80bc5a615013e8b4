"""A follower's scheduling workers and the leader's side of them: ``Eval.Dequeue`` /
``Eval.Ack`` / ``Eval.Nack`` (eval_endpoint.py), ``Plan.Submit`` (plan_endpoint.py), the
broker's delivery tokens and nack timeout, who may call them (``nomadd.rpc.auth``), and
:class:`FollowerScheduling` placing a job through them (follower_workers.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nomadd.helper.supervisor import Supervisor
from nomadd.rpc.auth import ServerSigner, server_caller
from nomadd.server.eval_broker import DELIVERY_LIMIT, EvalBroker
from nomadd.server.follower_workers import FollowerScheduling
from nomadd.server.rpc_auth import RPCAuth
from nomadd.server.state import store_allocs, store_evals
from nomadd.structs.errors import PermissionDeniedError
from nomadd.structs.eval import EvalStatus, Evaluation
from nomadd.structs.plan import Plan
from nomadd.structs.requests import Caller, CallerKind
from nomadd.structs.requests.scheduling import (
    EVAL_ACK,
    EVAL_DEQUEUE,
    EVAL_NACK,
    PLAN_SUBMIT,
    EvalAckRequest,
    EvalDequeueRequest,
    EvalToken,
    PlanSubmitItem,
    PlanSubmitRequest,
)
from tests.unit.server.fakes import FakeServer, api_job, wait_until

SERVER = server_caller()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _ev(eval_id: str, job_id: str = "a") -> Evaluation:
    return Evaluation(
        id=eval_id, namespace="default", job_id=job_id, priority=50, type="service", status=EvalStatus.PENDING
    )


async def _leader_with_pending_eval(**config: Any) -> tuple[FakeServer, str]:
    """A leader (scheduling enabled, no workers of its own) holding one pending eval."""
    server = FakeServer(leader_schedulers=0, follower_schedulers=1, **config)
    await server.add_node()
    server.scheduling.set_enabled(True)
    reply = await server.register_job(api_job(count=2))
    await wait_until(lambda: server.scheduling.broker.ready_count() == 1)
    return server, reply.eval_id


def test_dequeue_gives_tokens_and_only_the_token_acks() -> None:
    async def main() -> None:
        server, eval_id = await _leader_with_pending_eval()
        try:
            got = await server.rpc(
                EVAL_DEQUEUE, EvalDequeueRequest(timeout_s=0.1, max_evals=8, caller=SERVER)
            )
            assert [d.eval.id for d in got.evals] == [eval_id] and got.evals[0].token
            token = got.evals[0].token
            broker = server.scheduling.broker
            for wrong in ("", "not-the-token"):
                bad = EvalAckRequest(evals=(EvalToken(eval_id=eval_id, token=wrong),), caller=SERVER)
                assert (await server.rpc(EVAL_ACK, bad)).refused == (eval_id,)
                assert (await server.rpc(EVAL_NACK, bad)).refused == (eval_id,)
                assert broker.unacked_count() == 1  # refused: still outstanding
            good = EvalAckRequest(evals=(EvalToken(eval_id=eval_id, token=token),), caller=SERVER)
            assert (await server.rpc(EVAL_ACK, good)).refused == ()
            assert broker.unacked_count() == 0 and broker.stats["acked"] == 1
            # the old token is no longer outstanding: acking again is refused
            assert (await server.rpc(EVAL_ACK, good)).refused == (eval_id,)
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_plan_submit_needs_the_eval_token() -> None:
    async def main() -> None:
        server, eval_id = await _leader_with_pending_eval()
        try:
            got = await server.rpc(EVAL_DEQUEUE, EvalDequeueRequest(timeout_s=0.1, caller=SERVER))
            token = got.evals[0].token
            done = dataclasses.replace(got.evals[0].eval, status=EvalStatus.COMPLETE)
            for wrong, refused in (("x", True), (token, False)):
                item = PlanSubmitItem(eval_id=eval_id, token=wrong, plan=Plan(), evals=(done,))
                reply = await server.rpc(PLAN_SUBMIT, PlanSubmitRequest(items=(item,), caller=SERVER))
                status = store_evals.get_eval(server.store.snapshot(), eval_id).status
                if refused:
                    assert "token does not match" in reply.outcomes[0].error
                    assert status == EvalStatus.PENDING  # nothing written
                else:
                    assert reply.outcomes[0].error == "" and reply.outcomes[0].alloc_index > 0
                    assert status == EvalStatus.COMPLETE
        finally:
            server.scheduling.set_enabled(False)

    _run(main())


def test_nack_timeout_redelivers_then_fails_at_the_limit() -> None:
    async def main() -> None:
        failed: list[str] = []
        broker = EvalBroker(on_failed=lambda ev: failed.append(ev.id))
        broker.set_enabled(True)
        broker.enqueue(_ev("1"))
        tokens = []
        for _ in range(DELIVERY_LIMIT):
            ev = await broker.dequeue(1.0, nack_timeout=0.05)  # a follower that never acks
            assert ev is not None and ev.id == "1"
            tokens.append(broker.token_of("1"))
        assert len(set(tokens)) == DELIVERY_LIMIT  # a fresh token per delivery
        await asyncio.sleep(0.2)
        assert failed == ["1"] and await broker.dequeue(0.05) is None
        # an ack in time disarms the timeout
        broker.enqueue(_ev("2", "b"))
        ev = await broker.dequeue(1.0, nack_timeout=0.05)
        assert ev is not None
        broker.ack("2", broker.token_of("2"))
        await asyncio.sleep(0.15)
        assert broker.stats["nacked"] == DELIVERY_LIMIT and failed == ["1"]

    _run(main())


@pytest.mark.parametrize("method", [EVAL_DEQUEUE, EVAL_ACK, EVAL_NACK, PLAN_SUBMIT])
def test_only_servers_may_call_the_scheduling_rpcs(method: Any) -> None:
    auth = RPCAuth(ServerSigner("cluster-secret-0123456789"), lambda node_id: None)
    for caller in (Caller(kind=CallerKind.API), Caller(kind=CallerKind.NODE, node_id="n1")):
        with pytest.raises(PermissionDeniedError, match="only servers"):
            auth.authorize(method.name, method.request(caller=caller))
    auth.authorize(method.name, method.request(caller=SERVER))


@contextlib.asynccontextmanager
async def _follower_scheduling(nodes: int) -> AsyncIterator[tuple[FakeServer, FollowerScheduling]]:
    """A leader that does not schedule (``leader_schedulers = 0``) with ``nodes`` nodes, and a
    follower's workers scheduling for it; both stopped after."""
    server = FakeServer(leader_schedulers=0, follower_schedulers=4)
    for _ in range(nodes):
        await server.add_node()
    server.scheduling.set_enabled(True)
    follower = FollowerScheduling(server.ctx, Supervisor("follower"), leading=lambda: False)
    follower.start()
    try:
        yield server, follower
    finally:
        await follower.shutdown()
        server.scheduling.set_enabled(False)


def test_follower_workers_place_through_the_leader() -> None:
    async def main() -> None:
        async with _follower_scheduling(nodes=2) as (server, follower):
            assert server.scheduling.workers == []  # leader_schedulers = 0
            replies = [await server.register_job(api_job(job_id=f"web-{i}", count=3)) for i in range(5)]
            for r in replies:
                await wait_until(
                    lambda r=r: (
                        store_evals.get_eval(server.store.snapshot(), r.eval_id).status == EvalStatus.COMPLETE
                    )
                )
            snap = server.store.snapshot()
            allocs = [a for i in range(5) for a in store_allocs.allocs_by_job(snap, "default", f"web-{i}")]
            assert len(allocs) == 15
            # the plans travelled without their job: the leader attached its stored version
            assert all(a.job is not None and a.job.id == a.job_id for a in allocs)
            assert follower.placements == 15
            assert server.scheduling.broker.unacked_count() == 0

    _run(main())


def test_follower_workers_keep_working_across_a_leadership_change() -> None:
    """The leader's scheduling stops and starts again (a new term): evals a follower held are
    refused by the new broker (its tokens are new) and redelivered from state; every job ends
    up placed by the follower's workers."""

    async def main() -> None:
        async with _follower_scheduling(nodes=4) as (server, _):
            replies = [await server.register_job(api_job(job_id=f"web-{i}", count=2)) for i in range(20)]
            server.scheduling.set_enabled(False)  # leadership lost mid-way ...
            await asyncio.sleep(0.05)
            server.scheduling.set_enabled(True)  # ... and a new term: the broker restores from state
            for r in replies:
                await wait_until(
                    lambda r=r: (
                        store_evals.get_eval(server.store.snapshot(), r.eval_id).status == EvalStatus.COMPLETE
                    ),
                    timeout=10,
                )
            snap = server.store.snapshot()
            assert all(len(store_allocs.allocs_by_job(snap, "default", f"web-{i}")) == 2 for i in range(20))

    _run(main())

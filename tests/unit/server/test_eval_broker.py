"""EvalBroker and BlockedEvals on their own (no Raft)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from nomadd.server.blocked_evals import BlockedEvals
from nomadd.server.eval_broker import DELIVERY_LIMIT, EvalBroker
from nomadd.structs.eval import EvalStatus, Evaluation
from nomadd.structs.timeutil import NS_PER_S, format_time


def _ev(eval_id: str, job: str = "a", *, priority: int = 50, index: int = 1, **kw: Any) -> Evaluation:
    return Evaluation(
        id=eval_id,
        job_id=job,
        priority=priority,
        type="service",
        create_index=index,
        status=EvalStatus.PENDING,
        **kw,
    )


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_priority_then_age_and_one_eval_per_job() -> None:
    async def main() -> None:
        broker = EvalBroker()
        broker.set_enabled(True)
        broker.enqueue(_ev("1", "a", index=1))
        broker.enqueue(_ev("2", "b", priority=90, index=2))
        broker.enqueue(_ev("3", "a", index=3))  # same job as "1": waits for its ack
        broker.enqueue(_ev("1", "a", index=1))  # duplicate: ignored
        first = await broker.dequeue(0.1)
        second = await broker.dequeue(0.1)
        assert first is not None and first.id == "2"
        assert second is not None and second.id == "1"
        assert await broker.dequeue(0.05) is None
        broker.ack("1")
        third = await broker.dequeue(0.1)
        assert third is not None and third.id == "3"

    _run(main())


def test_ack_releases_newest_waiting_and_cancels_older() -> None:
    async def main() -> None:
        canceled: list[str] = []
        broker = EvalBroker(on_cancel=lambda evs: canceled.extend(e.id for e in evs))
        broker.set_enabled(True)
        for i in range(1, 5):
            broker.enqueue(_ev(str(i), "a", index=i))
        ev = await broker.dequeue(0.1)
        assert ev is not None and ev.id == "1"
        broker.ack("1")
        nxt = await broker.dequeue(0.1)
        assert nxt is not None and nxt.id == "4"
        assert sorted(canceled) == ["2", "3"]

    _run(main())


def test_nack_redelivers_until_limit() -> None:
    async def main() -> None:
        broker = EvalBroker()
        broker.set_enabled(True)
        broker.enqueue(_ev("1"))
        for attempt in range(DELIVERY_LIMIT):
            ev = await broker.dequeue(0.1)
            assert ev is not None
            assert broker.nack("1") == (attempt < DELIVERY_LIMIT - 1)
        assert await broker.dequeue(0.05) is None

    _run(main())


def test_wait_until_delays_delivery() -> None:
    async def main() -> None:
        broker = EvalBroker()
        broker.set_enabled(True)
        due = time.time_ns() + NS_PER_S // 5
        broker.enqueue(_ev("1", wait_until=format_time(due)))
        assert await broker.dequeue(0.05) is None
        ev = await broker.dequeue(2.0)
        assert ev is not None and time.time_ns() >= due

    _run(main())


def test_disabled_broker_drops_everything() -> None:
    async def main() -> None:
        broker = EvalBroker()
        broker.enqueue(_ev("1"))
        broker.set_enabled(True)
        assert await broker.dequeue(0.01) is None
        broker.enqueue(_ev("2"))
        broker.set_enabled(False)
        broker.set_enabled(True)
        assert broker.total() == 0

    _run(main())


def test_blocked_evals_one_per_job_and_unblock() -> None:
    enqueued: list[str] = []
    canceled: list[str] = []
    blocked = BlockedEvals(
        lambda e: enqueued.append(e.id), on_cancel=lambda evs: canceled.extend(e.id for e in evs)
    )
    blocked.set_enabled(True)
    old = dataclasses.replace(_ev("b1", "a", index=5), status=EvalStatus.BLOCKED, snapshot_index=5)
    new = dataclasses.replace(_ev("b2", "a", index=9), status=EvalStatus.BLOCKED, snapshot_index=9)
    blocked.block(old)
    blocked.block(new)
    assert canceled == ["b1"] and blocked.count() == 1
    assert blocked.unblock(12) == 1
    assert enqueued == ["b2"]
    # capacity appeared (index 12) after this eval's snapshot (10): straight back to the broker
    late = dataclasses.replace(_ev("b3", "c", index=10), status=EvalStatus.BLOCKED, snapshot_index=10)
    blocked.block(late)
    assert enqueued == ["b2", "b3"] and blocked.count() == 0

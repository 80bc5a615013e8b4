"""Client alloc GC: only terminal allocations, oldest first, down to the maximum."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nomadd.client.gc import gc_candidates, run_gc
from nomadd.structs.alloc import AllocClientStatus


@dataclass
class R:
    create_index: int
    done: bool
    status: AllocClientStatus = AllocClientStatus.COMPLETE

    def terminal(self) -> bool:
        return self.done


def test_candidates_oldest_terminal_first() -> None:
    runners = {"a": R(5, True), "b": R(1, False), "c": R(3, True), "d": R(4, True)}
    assert gc_candidates(runners, max_allocs=4) == []
    assert gc_candidates(runners, max_allocs=2) == ["c", "d"]
    assert gc_candidates(runners, max_allocs=0) == ["c", "d", "a"]  # the running one stays


def test_run_gc_destroys() -> None:
    runners = {"a": R(1, True), "b": R(2, True)}
    destroyed: list[str] = []

    async def destroy(alloc_id: str) -> None:
        destroyed.append(alloc_id)
        runners.pop(alloc_id)

    async def main() -> None:
        task = asyncio.create_task(run_gc(lambda: runners, destroy, interval_s=0.01, max_allocs=1))
        while not destroyed:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(main(), 5))
    assert destroyed == ["a"]

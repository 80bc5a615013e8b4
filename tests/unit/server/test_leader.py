"""LeaderLoop with a fake Raft: barrier before enabling, reconcile while leader, disable on loss."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nomadd.server.leader import LeaderLoop
from nomadd.structs.errors import RaftApplyError


class FakeRaft:
    def __init__(self) -> None:
        self.leader = False
        self.listeners: list[Callable[[bool], None]] = []
        self.barrier_failures = 1
        self.barriers = 0

    def add_leadership_listener(self, fn: Callable[[bool], None]) -> None:
        self.listeners.append(fn)

    def is_leader(self) -> bool:
        return self.leader

    async def barrier(self) -> int:
        self.barriers += 1
        if self.barrier_failures:
            self.barrier_failures -= 1
            raise RaftApplyError("leadership changed")
        return 7

    def set_leader(self, value: bool) -> None:
        self.leader = value
        for fn in self.listeners:
            fn(value)


class Component:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def set_enabled(self, enabled: bool) -> None:
        self.log.append(f"enabled={enabled}")

    async def shutdown(self) -> None:
        self.log.append("shutdown")


async def _until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_barrier_then_enable_reconcile_then_disable_on_loss() -> None:
    async def main() -> None:
        raft = FakeRaft()
        log: list[str] = []
        reconciles = 0

        async def reconcile() -> None:
            nonlocal reconciles
            reconciles += 1
            log.append("reconcile")

        loop = LeaderLoop(raft, reconcile)  # type: ignore[arg-type]
        loop.register(Component(log))
        raft.set_leader(True)
        await _until(lambda: "reconcile" in log)
        assert raft.barriers == 2  # the first barrier failed and was retried
        assert log[0] == "enabled=True"  # components only after the barrier
        loop.kick()
        await _until(lambda: reconciles >= 2)
        raft.set_leader(False)
        assert log[-1] == "enabled=False"
        assert not loop.established
        # regained: the whole sequence runs again; a late registration is enabled at once
        raft.barrier_failures = 0
        raft.set_leader(True)
        await _until(lambda: loop.established)
        late: list[str] = []
        loop.register(Component(late))
        assert late == ["enabled=True"]
        await loop.shutdown()
        assert late[-2:] == ["enabled=False", "shutdown"]  # disabled, then its tasks awaited

    asyncio.run(main())

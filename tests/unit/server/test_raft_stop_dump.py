"""A follower that stops while its Raft dump is nearly written waits for it (raft/stop_dump.py):
three real members with data dirs; the follower's quiet dump is slowed in its child, the
follower is stopped meanwhile, and the dump is in place (the journal trimmed) when the stop
returns. Plus the policy: when a stop waits, and when it does not."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nomadd.server.raft import Raft, stop_dump
from nomadd.server.raft import dump as dump_module
from nomadd.server.raft.stop_dump import REPLAY_BYTES_PER_S, STOP_DUMP_WAIT_S, remaining_s
from nomadd.structs.codec import pack
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.variables import VarUpsertEntry
from tests.unit.server.server_helpers import make_members, start_all, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]

CHILD_SLEEP_S = 3.0  # how long the slowed dump child sleeps once its file is written


def test_a_stop_waits_only_for_a_dump_whose_rest_costs_less_than_the_replay() -> None:
    big = 1 << 30
    # 10 s of CPU wrote 900 of 1,000 bytes: ~1.1 s to go, against a long replay
    assert 1.0 <= remaining_s(10.0, 900, 1000.0, big) <= 1.2
    assert remaining_s(10.0, 1_000, 1000.0, big) == 1.0  # all written: being finished
    assert remaining_s(10.0, 100, 1000.0, big) == 0.0  # 90 s to go: over STOP_DUMP_WAIT_S
    assert remaining_s(10.0, 900, 1000.0, int(REPLAY_BYTES_PER_S)) == 0.0  # the replay: 1 s
    assert remaining_s(10.0, 900, 1000.0, int(REPLAY_BYTES_PER_S * 2)) > 0  # ... 2 s
    assert remaining_s(1.0, 0, 1000.0, big) == 0.0  # nothing written yet: no rate
    assert remaining_s(10.0, 900, 0.0, big) == 0.0  # no size known


def _put(i: int) -> bytes:
    return pack(VarUpsertEntry(namespace="default", path=f"k{i}", key_id="k", data=b"x" * 2000, time=1))


def test_a_follower_stopped_during_its_dump_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dump_module, "IDLE_DUMP_S", 0.5)
    monkeypatch.setattr(dump_module, "IDLE_DUMP_MIN_BYTES", 4096)
    monkeypatch.setattr(stop_dump, "REPLAY_BYTES_PER_S", 1000.0)  # the test's journal: a long replay
    real_write = dump_module.write_dump_file
    slow = {"on": False}

    def write(*args: Any, **kwargs: Any) -> Any:  # runs in the forked child
        out = real_write(*args, **kwargs)
        if slow["on"]:
            time.sleep(CHILD_SLEEP_S)
        return out

    monkeypatch.setattr(dump_module, "write_dump_file", write)

    async def main() -> None:
        rafts = make_members(3, tmp_path)
        try:
            leader = await start_all(rafts)
            follower = next(r for r in rafts if r is not leader)
            dumper = follower._dumper
            assert dumper is not None
            for i in range(20):
                await leader.apply(MessageType.VAR_UPSERT, _put(i))
            await wait_until(lambda: dumper.bytes_per_row > 0, what="the follower's first quiet dump")
            first = dumper.dumped
            assert first is not None
            slow["on"] = True
            for i in range(20, 40):
                await leader.apply(MessageType.VAR_UPSERT, _put(i))
            target = leader.fsm.store.latest_index()  # the store's: applied (the view may lag)
            await wait_until(
                _written(dumper, first.path), timeout=30, what="the follower's second dump written"
            )
            journal = tmp_path / f"n{rafts.index(follower)}" / "raft.journal"
            before = journal.stat().st_size
            t0 = time.monotonic()
            await follower.shutdown()
            took = time.monotonic() - t0
            assert dumper.dumped is not None and dumper.dumped.index >= target > first.index, (
                "the stop killed the dump in progress"
            )
            assert 0.5 < took < STOP_DUMP_WAIT_S
            assert journal.stat().st_size < before / 4  # trimmed once the dump was in place
        finally:
            await _shutdown(rafts)

    asyncio.run(main())


def _written(dumper: dump_module.DumpSerializer, last: str) -> Callable[[], bool]:
    """Whether the dump in progress has its file written (its child then sleeps): at least the
    size of ``last``, the dump before it (this one holds more rows)."""
    size = os.path.getsize(last)

    def written() -> bool:
        progress = dumper.in_progress()
        return progress is not None and progress[2] >= size

    return written


async def _shutdown(rafts: list[Raft]) -> None:
    await asyncio.gather(*(r.shutdown() for r in rafts))

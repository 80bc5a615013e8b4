"""The collector policy's freezing: counted without walking the permanent generation."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from nomadd.helper import gc_policy


@pytest.fixture
def no_walk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """gc.get_freeze_count() walks every frozen object (O(all frozen), millions on a large
    server), which the end of a restore paid on Raft's tick thread. It must not be called."""

    def walk() -> int:
        raise AssertionError("gc.get_freeze_count() walks the permanent generation")

    enabled = gc.isenabled()
    monkeypatch.setattr(gc, "get_freeze_count", walk)
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def _long_lived(n: int) -> list[list[Any]]:
    return [[i] for i in range(n)]


def test_the_end_of_a_restore_freezes_what_it_built_without_walking_the_frozen(no_walk: None) -> None:
    before = gc_policy.frozen_objects()
    with gc_policy.paused():
        keep = _long_lived(50_000)
    assert gc_policy.frozen_objects() - before >= len(keep) * 0.99
    assert not any(o is keep for o in gc.get_objects())  # frozen: no generation holds it


def test_a_freeze_without_a_count_counts_the_young_generations(no_walk: None) -> None:
    gc_policy.freeze()
    gc.disable()
    before = gc_policy.frozen_objects()
    keep = _long_lived(30_000)
    young = gc_policy.young_objects()
    assert len(keep) * 0.99 <= young <= len(keep) + 1000
    gc_policy.freeze()
    assert abs(gc_policy.frozen_objects() - before - young) < 100  # counted again inside


def test_a_due_full_collection_is_found_before_the_young_ones_that_trigger_it() -> None:
    thresholds = (10_000, 5, 10)
    assert gc_policy.due_generation((10_001, 6, 11), thresholds) == 2  # CPython collects 2 here
    assert gc_policy.due_generation((10_001, 6, 10), thresholds) == 1
    assert gc_policy.due_generation((10_001, 5, 10), thresholds) == 0
    assert gc_policy.due_generation((0, 0, 11), thresholds) == 2


def test_a_due_full_collection_is_what_the_collector_runs_next() -> None:
    """The order checked against CPython's collector itself: with generation 2's count over its
    threshold, the collection that generation 0 triggers is a full one."""
    seen: list[int] = []

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(int(info["generation"]))

    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()
    try:
        gc.set_threshold(100, 1, 1)
        gc.collect()
        # CPython runs a due full collection only once the objects awaiting one are a quarter
        # of those that survived the last: promote that many to generation 2
        keep = _long_lived(len(gc.get_objects(2)) // 2)
        gc.collect(1)
        gc.collect(1)  # generation 2's count is 2 now, over its threshold of 1
        gc.collect(0)  # and generation 1's 1, not over its own
        assert gc_policy.due_generation() == 2
        gc.callbacks.append(record)
        gc.enable()
        keep.extend(_long_lived(200))  # generation 0 fills up: the collector picks a generation
        gc.disable()
    finally:
        if record in gc.callbacks:
            gc.callbacks.remove(record)
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()
    assert seen[:1] == [2]

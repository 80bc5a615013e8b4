"""The agent's GC policy (survivors of a generation-1 collection frozen once the process is
large) and its watch (pauses and loop lag into telemetry, long ones logged)."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nomadd import telemetry
from nomadd.agent import runtime
from nomadd.helper import gc_policy


@pytest.fixture
def gc_state() -> Iterator[None]:
    """The collector's global state as the test found it (thresholds, enabled, callbacks)."""
    thresholds, enabled, callbacks = gc.get_threshold(), gc.isenabled(), list(gc.callbacks)
    yield
    gc.callbacks[:] = callbacks
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


def _long_lived(n: int) -> list[list[Any]]:
    return [[i] for i in range(n)]


def test_survivors_of_a_generation_1_collection_are_frozen_once_the_process_is_large(
    gc_state: None,
) -> None:
    watch = runtime.RuntimeWatch(freeze_min_objects=0)
    watch.install_gc()
    before = gc.get_freeze_count()
    keep = _long_lived(5000)
    gc.collect(1)
    assert watch.freezes >= 1
    assert gc.get_freeze_count() >= before + len(keep)
    gc.collect()  # a full collection walks none of them now
    assert not any(o is keep for o in gc.get_objects(2))
    gc.unfreeze()


def test_a_small_process_is_not_frozen(gc_state: None) -> None:
    watch = runtime.RuntimeWatch(freeze_min_objects=10**12)
    watch.install_gc()
    before = gc.get_freeze_count()
    _keep = _long_lived(1000)
    gc.collect(1)
    gc.collect()
    assert watch.freezes == 0
    assert gc.get_freeze_count() == before


def test_every_pause_is_recorded_and_published_by_generation(
    gc_state: None, caplog: pytest.LogCaptureFixture
) -> None:
    watch = runtime.RuntimeWatch(freeze_min_objects=10**12)
    watch.install_gc()
    gc.collect(0)
    gc.collect()
    watch.uninstall_gc()
    assert [g for g, _, _ in watch.pending] == [0, 2]
    assert watch.max_pause_ns > 0
    watch.pending.append((2, int(runtime.SLOW_PAUSE_S * 2e9), 7))  # one long pause
    with caplog.at_level(logging.WARNING, logger="nomadd.agent.runtime"):
        watch.publish()
    assert not watch.pending
    samples = telemetry.REGISTRY.samples
    assert samples[("nomad.runtime.gc_pause_ns", (("generation", "2"),))].count >= 2
    assert ("nomad.runtime.gc_pause_ns", (("generation", "0"),)) in samples
    assert "long gc pause generation=2 took_ms=1000 collected=7" in caplog.text
    gauges = telemetry.REGISTRY.gauges
    assert gauges[("nomad.runtime.gc_max_pause_ns", ())] == watch.max_pause_ns


def test_the_loop_probe_measures_a_stall_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    watch = runtime.RuntimeWatch()

    async def main() -> None:
        probe = asyncio.create_task(watch.run(interval=0.01))
        await asyncio.sleep(0.02)
        time.sleep(runtime.SLOW_PAUSE_S + 0.1)  # noqa: ASYNC251 (the stall under test)
        await asyncio.sleep(0.05)
        probe.cancel()

    with caplog.at_level(logging.WARNING, logger="nomadd.agent.runtime"):
        asyncio.run(main())
    assert watch.max_lag_s >= runtime.SLOW_PAUSE_S
    assert "event loop stalled took_ms=" in caplog.text
    # the period split: the loop thread slept (blocked), it did not work or wait for a CPU
    found = re.search(
        r"event loop stalled took_ms=\d+ gap_ms=\d+ cpu_ms=(\d+) .*blocked_ms=(\d+)", caplog.text
    )
    assert found is not None, caplog.text
    assert int(found[1]) < 100 and int(found[2]) >= runtime.SLOW_PAUSE_S * 1000
    # the watchdog thread named the code that held the loop while it held it
    assert "event loop busy took_ms=" in caplog.text
    assert "test_runtime.py:" in caplog.text and ":main" in caplog.text
    assert telemetry.REGISTRY.gauges[("nomad.runtime.loop_max_lag_ms", ())] >= runtime.SLOW_PAUSE_S * 1000


def test_publishing_and_freezing_never_walk_the_permanent_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    """gc.get_freeze_count() walks every frozen object (millions on a large server): called at
    every publish, it took most of a server's CPU in the C1M run."""
    watch = runtime.RuntimeWatch(freeze_min_objects=0)

    def walk() -> int:
        raise AssertionError("gc.get_freeze_count() walks the permanent generation")

    monkeypatch.setattr(gc, "get_freeze_count", walk)
    watch.pending.append((1, 1000, 0))
    watch.publish()
    watch._freeze_survivors()
    assert watch.freezes == 1
    gc.unfreeze()


def test_before_the_first_freeze_generation_2_is_measured_at_most_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing generation 2 (up to FREEZE_MIN_OBJECTS objects, ~4 ms) after every generation-1
    collection cost a busy server 0.5-1.5 % of its CPU before it first froze."""
    watch = runtime.RuntimeWatch(freeze_min_objects=10**12)
    measured: list[int] = []
    real = gc.get_objects

    def get_objects(generation: int | None = None) -> list[Any]:
        measured.append(1)
        return real(generation)

    monkeypatch.setattr(gc, "get_objects", get_objects)
    clock = [100.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock[0])
    for _ in range(5):  # five generation-1 collections within a second
        watch._freeze_survivors()
    assert len(measured) == 1
    clock[0] += runtime.MEASURE_EVERY_S
    watch._freeze_survivors()
    assert len(measured) == 2 and watch.freezes == 0
    watch.freeze_min_objects = 0  # once freezing has begun, every collection's survivors go
    clock[0] += runtime.MEASURE_EVERY_S
    watch._freeze_survivors()
    watch._freeze_survivors()
    assert len(measured) == 4 and watch.freezes == 2
    gc.unfreeze()


def test_objects_a_restore_freezes_are_counted_by_the_watch(gc_state: None) -> None:
    """A restore freezes the state it built (gc_policy.paused) outside the watch: the
    watch's count (the gauge, and when it starts freezing) must include those objects."""

    watch = runtime.RuntimeWatch(freeze_min_objects=10**12)
    before = watch.frozen
    with gc_policy.paused():
        keep = _long_lived(20_000)
    try:
        # counted from generation 0's count: net allocations (a few older objects freed meanwhile)
        assert watch.frozen >= before + len(keep) * 0.99
        watch.publish()
        assert telemetry.REGISTRY.gauges[("nomad.runtime.gc_frozen_objects", ())] == watch.frozen
    finally:
        gc.unfreeze()


def test_before_the_first_freeze_generation_2_is_measured_when_a_full_collection_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measured at most once a second otherwise, generation 2 could grow for a second past
    FREEZE_MIN_OBJECTS and a full collection then walk it all: when the next collection is a
    full one, it is measured (and frozen when large) first."""
    watch = runtime.RuntimeWatch(freeze_min_objects=10**12)
    measured: list[int] = []
    real = gc.get_objects

    def get_objects(generation: int | None = None) -> list[Any]:
        if generation == 2:
            measured.append(1)
        return real(generation)

    monkeypatch.setattr(gc, "get_objects", get_objects)
    monkeypatch.setattr(runtime.time, "monotonic", lambda: 100.0)
    counts = [(0, 0, 3)]
    monkeypatch.setattr(gc, "get_count", lambda: counts[0])
    monkeypatch.setattr(gc, "get_threshold", lambda: runtime.GC_THRESHOLDS)
    watch._freeze_survivors()
    watch._freeze_survivors()
    assert len(measured) == 1  # within the second: not measured again
    counts[0] = (0, 0, runtime.GC_THRESHOLDS[2] + 1)  # a full collection is due
    watch._freeze_survivors()
    assert len(measured) == 2 and watch.freezes == 0
    watch.freeze_min_objects = 0
    watch._freeze_survivors()
    assert len(measured) == 3 and watch.freezes == 1
    gc.unfreeze()

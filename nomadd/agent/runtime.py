"""The agent's Python runtime under load: the cyclic GC policy and a watch on pauses.

One process runs the event loop, pysyncobj's tick thread and background threads (a snapshot's
decoding, ``asyncio.to_thread`` work); they share the GIL, and a cyclic-GC collection stops all
of them. A full (generation 2) collection walks every container object the collector tracks, and
a server's state store is made of them: about 9 tracked objects per stored allocation. With
1,000,000 allocations one ``gc.collect()`` took 6.9-7.2 s (``scripts/bench_gc.py 1000000``; with
the persistent-map tables, 3.6 s already at 200,000), far above Raft's election timeout (0.4-1.0
s): past a few hundred thousand allocations a leader stopped answering and lost its leadership
at every full collection.

The policy (:func:`install`):

* generations 0 and 1 are collected as usual (``GC_THRESHOLDS``: young collections scan at most
  about 10,000 and 50,000 objects);
* after every generation-1 collection its survivors, just promoted to generation 2, are moved to
  the permanent generation (``gc.freeze()``), which no collection walks. Generation 2 then stays
  empty, and no pause is longer than a generation-1 collection's, whatever the size of the
  store: growing a persistent-map store to 1,000,000 allocations (``scripts/bench_gc.py``) the
  longest pause was 105 ms and the collector took 14 s in all; without freezing, 33.6 s (one
  full collection) and 151 s. Freezing after each full collection instead left up to two
  generation-1 collections' worth in generation 2 (0.45 s pauses on a dict-table store).
* The trade-off: an object in the permanent generation is still freed by reference counting
  (almost everything here: frozen dataclasses, tuples, dicts from msgpack are acyclic), but a
  reference *cycle* of frozen objects that becomes garbage later is never collected. Only
  objects that survived a generation-1 collection are frozen, so the cycles made and dropped by
  requests, tasks and exceptions within about 50,000 allocations are collected while young;
  what leaks is a cycle that lived longer first (a long blocking query's task, say). Measured:
  20,000 placements through the scheduler harness froze 108,703 objects, and a full collection
  after unfreezing them found no garbage among them. A process
  holding fewer than ``FREEZE_MIN_OBJECTS`` objects (a client agent, a small cluster's server)
  is not frozen at all: its full collections are short. ``nomad.runtime.gc_frozen_objects``
  (counted as they are frozen, some freed since)
  shows the permanent generation's size.

The watch (:class:`RuntimeWatch`): every collection's pause is recorded by a GC callback (in
whatever thread triggered it; the callback only appends to a deque, it takes no lock), and a
task on the loop publishes them as ``nomad.runtime.gc_pause_ns`` samples (label
``generation``), measures how late its own wake-ups are (``nomad.runtime.loop_lag_ms``: time the
loop was busy with something else) and logs a warning for a GC pause or a loop stall longer
than ``SLOW_PAUSE_S``.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from nomadd import telemetry
from nomadd.helper import gc_policy
from nomadd.helper.cpu_clock import Stall, ThreadClock
from nomadd.helper.gc_policy import GC_THRESHOLDS

logger = logging.getLogger(__name__)

__all__ = [
    "FREEZE_MIN_OBJECTS",
    "GC_THRESHOLDS",
    "HEAP_GROWTH_ENV",
    "MEASURE_EVERY_S",
    "SLOW_PAUSE_S",
    "LoopWatchdog",
    "RuntimeWatch",
    "install",
]

# Below this many objects (frozen + in generation 2) nothing is frozen: a full collection of
# 250,000 objects takes about 0.15 s here.
FREEZE_MIN_OBJECTS = 250_000
SLOW_PAUSE_S = 0.5  # a GC pause or loop stall longer than this is logged
WATCH_INTERVAL_S = 0.25  # how often the loop-lag probe wakes up
# Until the first freeze, generation 2 is measured at most this often (see _freeze_survivors).
MEASURE_EVERY_S = 1.0
# Test only: a directory; once a file named as the agent (``name``) exists in it, the agent
# grows a long-lived heap of as many container objects as the file says (about 15 times a
# server's state growth at 3,750 placements/s), standing in for a state store of hundreds of
# thousands of allocations that a test cannot commit in a minute
# (tests/integration/test_leader_under_load.py).
HEAP_GROWTH_ENV = "NOMADD_TEST_HEAP_GROWTH"
_GROWTH_CHUNK = 20_000  # objects added per step of the heap growth
_GROWTH_STEP_S = 0.04  # the pause between two steps (the loop serves its other work meanwhile)
_MAX_PENDING = 4096  # pauses kept between two publications (a burst beyond it drops the oldest)


class RuntimeWatch:
    """GC callback + loop-lag probe. :meth:`install_gc` once, then ``await run()`` on the loop."""

    def __init__(self, *, freeze_min_objects: int = FREEZE_MIN_OBJECTS) -> None:
        self.freeze_min_objects = freeze_min_objects
        self._started_ns = 0
        # (generation, pause ns, objects collected); appended in the GC callback, drained by run()
        self.pending: collections.deque[tuple[int, int, int]] = collections.deque(maxlen=_MAX_PENDING)
        self.max_pause_ns = 0
        self.max_lag_s = 0.0
        self.freezes = 0
        self._next_measure = 0.0  # monotonic time of the next measure of generation 2 before a freeze

    # ---- GC side (any thread, inside the collector: no locks, no logging) --------------------
    def install_gc(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def uninstall_gc(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
            return
        pause = time.perf_counter_ns() - self._started_ns
        generation = int(info.get("generation", 0))
        self.pending.append((generation, pause, int(info.get("collected", 0))))
        self.max_pause_ns = max(self.max_pause_ns, pause)
        if generation >= 1:
            self._freeze_survivors()

    def _freeze_survivors(self) -> None:
        """Freeze generation 2 once the process is large enough for a full collection to hurt.

        Costs O(generation 2), which stays small once freezing has begun; never O(frozen).
        Before that, generation 2 grows toward ``freeze_min_objects`` and measuring it (a list of
        all of it: 3.9 ms at 250,000 objects) after every generation-1 collection cost a busy
        server 0.5-1.5 % of its CPU: it is measured at most every ``MEASURE_EVERY_S`` then, so
        the first freeze comes at most that much growth late; except when the next collection
        is a full one (:func:`nomadd.helper.gc_policy.full_collection_due`): generation 2 is
        measured (and frozen if large) now, before that collection walks a second's growth."""
        if not self.freezes:
            now = time.monotonic()
            if now < self._next_measure and not gc_policy.full_collection_due():
                return
            self._next_measure = now + MEASURE_EVERY_S
        survivors = len(gc.get_objects(2))
        if self.frozen + survivors < self.freeze_min_objects:
            return
        gc_policy.freeze(survivors)
        self.freezes += 1

    @property
    def frozen(self) -> int:
        """Objects moved to the permanent generation so far by anyone in this process (this
        watch, start-up, a restore: :func:`nomadd.helper.gc_policy.freeze`), as counted then:
        gc.get_freeze_count() walks the whole permanent generation (millions of objects on a
        large server), which at every publish took most of a server's CPU."""
        return gc_policy.frozen_objects()

    # ---- loop side ---------------------------------------------------------------------------
    def publish(self) -> None:
        """Move the recorded pauses into telemetry; log the long ones."""
        while self.pending:
            generation, pause_ns, collected = self.pending.popleft()
            telemetry.add_sample("nomad.runtime.gc_pause_ns", pause_ns, {"generation": str(generation)})
            if pause_ns > SLOW_PAUSE_S * 1e9:
                logger.warning(
                    "long gc pause generation=%d took_ms=%d collected=%d frozen=%d",
                    generation,
                    pause_ns // 1_000_000,
                    collected,
                    self.frozen,
                )
        telemetry.set_gauge("nomad.runtime.gc_frozen_objects", self.frozen)
        telemetry.set_gauge("nomad.runtime.gc_max_pause_ns", self.max_pause_ns)
        telemetry.set_gauge("nomad.runtime.loop_max_lag_ms", self.max_lag_s * 1000.0)

    def lagged(self, lag_s: float, stall: Stall | None = None) -> None:
        """``stall``: the split of the probe's whole period (its sleep included, as blocked
        time) into the loop thread's CPU, the rest of the process's, and its wait for a CPU."""
        telemetry.add_sample("nomad.runtime.loop_lag_ms", lag_s * 1000.0)
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if lag_s > SLOW_PAUSE_S:
            logger.warning("event loop stalled took_ms=%d %s", int(lag_s * 1000), (stall or Stall()).fields())

    async def run(self, interval: float = WATCH_INTERVAL_S) -> None:
        loop = asyncio.get_running_loop()
        watchdog = LoopWatchdog(threading.get_ident(), interval)
        watchdog.start()
        clock = ThreadClock()
        try:
            while True:
                start, before = loop.time(), clock.sample()
                watchdog.beat()
                await asyncio.sleep(interval)
                lag = max(loop.time() - start - interval, 0.0)
                self.lagged(lag, Stall.between(before, clock.sample()) if lag > SLOW_PAUSE_S else None)
                self.publish()
        finally:
            watchdog.stop()


class LoopWatchdog:
    """A thread that names what the event loop's thread is running once the loop has not come
    back for ``SLOW_PAUSE_S`` (``event loop busy ... at=<innermost frames>``): the lag probe
    can only say, afterwards, how long it was. It sees Python code holding the loop (the GIL
    changes hands every few ms); during a GC pause or one long C call it cannot run either."""

    def __init__(self, loop_thread: int, interval: float, *, threshold: float = SLOW_PAUSE_S) -> None:
        self._loop_thread = loop_thread
        self._interval = interval  # how often the loop beats
        self._threshold = threshold
        self._beat = time.monotonic()
        self._reported = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def beat(self) -> None:
        self._beat = time.monotonic()
        self._reported = False

    def _run(self) -> None:
        while not self._stop.wait(min(self._interval, self._threshold) / 2):
            late = time.monotonic() - self._beat - self._interval
            if late > self._threshold and not self._reported:
                self._reported = True
                logger.warning("event loop busy took_ms=%d at=%s", int(late * 1000), self.where())

    def where(self, depth: int = 6) -> str:
        """The innermost ``depth`` frames of the loop's thread, outermost first."""
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "-"
        frames = traceback.extract_stack(frame)[-depth:]
        return " > ".join(f"{_short(f.filename)}:{f.lineno}:{f.name}" for f in frames)


def _short(path: str) -> str:
    """``.../nomadd/server/worker.py`` -> ``nomadd/server/worker.py``; other paths: the file name."""
    _, sep, tail = path.rpartition("/nomadd/")
    return f"nomadd/{tail}" if sep else os.path.basename(path)


_ballast: list[list[Any]] = [[] for _ in range(64)]
_BALLAST_REFS = 4  # each object holds this many references to earlier ones, spread over the heap


async def grow_heap(trigger: Path) -> None:
    """Test only (``HEAP_GROWTH_ENV``): once ``trigger`` exists, add the number of long-lived
    objects it holds, ``_GROWTH_CHUNK`` at a time, yielding to the loop between chunks.

    Each object is a list of references to earlier objects spread over the heap, as stored
    structs reference strings, tuples and nested structs allocated elsewhere: a collection
    walks it at about half the cost per object of a stored allocation's."""
    while not await asyncio.to_thread(trigger.exists):
        await asyncio.sleep(0.2)
    total = int((await asyncio.to_thread(trigger.read_text)).strip() or 0)
    logger.info("test heap growth started objects=%d", total)
    while len(_ballast) < total:
        n, span = len(_ballast), len(_ballast) - _BALLAST_REFS
        _ballast.extend(
            _ballast[(i * 7919) % span : (i * 7919) % span + _BALLAST_REFS]
            for i in range(n, min(n + _GROWTH_CHUNK, total))
        )
        await asyncio.sleep(_GROWTH_STEP_S)
    logger.info("test heap growth done objects=%d", len(_ballast))


def growth_trigger(name: str) -> Path | None:
    """The ``HEAP_GROWTH_ENV`` trigger file of the agent ``name``, when the test switch is set."""
    value = os.environ.get(HEAP_GROWTH_ENV)
    return Path(value) / name if value else None


def install() -> RuntimeWatch:
    """The GC policy for a running agent: thresholds, the start-up objects frozen, the watch's
    GC callback installed and the collector enabled. Call once the agent is ready."""
    watch = RuntimeWatch()
    gc_policy.freeze()  # classes, modules, configuration: built once, never garbage
    gc.set_threshold(*GC_THRESHOLDS)
    watch.install_gc()
    gc.enable()
    return watch

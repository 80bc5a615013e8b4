"""The cyclic collector's thresholds a nomadd process runs with, the one entry point of its
freezes (counted without walking the permanent generation) and which generation it collects
next (the policy around them is :mod:`nomadd.agent.runtime`; the scheduler's benchmark
measures under the thresholds too)."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = [
    "GC_THRESHOLDS",
    "due_generation",
    "freeze",
    "frozen_objects",
    "full_collection_due",
    "paused",
    "young_objects",
]

# The youngest generation is collected every 10,000 net container allocations (default 700):
# a server decoding and scheduling thousands of allocations a second spent 0.32 s of its CPU in
# the collector during `scripts/bench schedule` at 700, 0.10 s at 10,000 (objects here are
# mostly acyclic). Generation 1 every 5 of those (default 10): the longest pause of a large
# server is a generation-1 collection's, of at most about 50,000 objects (growing to 1,000,000
# allocations 105 ms, 266 ms with 10). Generation 2 keeps its default ratio (it is empty once
# the process is large enough to freeze: see nomadd/agent/runtime.py).
GC_THRESHOLDS = (10_000, 5, 10)

# Objects this process moved to the permanent generation, counted as they are frozen: the
# count is a gauge (nomad.runtime.gc_frozen_objects) and decides when the GC watch starts
# freezing, and gc.get_freeze_count() walks the whole permanent generation (millions of
# objects on a large server), too slow to call each time it is read. A plain int: it is also
# updated from inside a GC callback, where no lock may be taken (an update racing another is
# off by one freeze's count in a gauge, nothing more).
_frozen = 0


def freeze(count: int | None = None) -> None:
    """``gc.freeze()`` through the one entry point that keeps :func:`frozen_objects` true.
    ``count``: the objects being frozen when the caller has just measured them (the GC watch's
    generation 2); without it they are counted by :func:`young_objects`, never by
    ``gc.get_freeze_count()``: that walks the whole permanent generation (7 ms for 950,000
    objects allocated in a row, more on a server's scattered heap), and the end of a restore,
    which freezes what it built, runs on Raft's tick thread (a follower installing the
    leader's snapshot), where that walk held back heartbeats."""
    global _frozen
    if count is None:
        count = young_objects()
    gc.freeze()  # O(1): the generations' lists are moved, not walked
    _frozen += count


def young_objects() -> int:
    """Objects the collector tracks outside the permanent generation, without walking that
    generation: generation 0 by its count (the net container allocations since it was last
    collected, O(1); objects freed since then lower it, even older ones, so it may count short),
    generations 1 and 2 listed (small once freezing has begun; at most about ``FREEZE_MIN_OBJECTS``
    of :mod:`nomadd.agent.runtime` before)."""
    return gc.get_count()[0] + len(gc.get_objects(1)) + len(gc.get_objects(2))


def frozen_objects() -> int:
    """Objects in the permanent generation as of the last :func:`freeze` (a count kept, not a
    walk; ``gc.unfreeze`` by tests is not seen)."""
    return _frozen


def due_generation(
    counts: tuple[int, int, int] | None = None, thresholds: tuple[int, int, int] | None = None
) -> int:
    """The generation the collector collects the next time generation 0 fills up, found as
    CPython finds it (``gc_collect_generations``): oldest first, the first whose count is over
    its threshold. A young collection triggers it, but a full collection that is due is what
    runs then, so generation 2 is looked at first (looking from generation 0 up would answer
    0 and miss it). CPython also skips a due full collection while fewer objects await one
    than a quarter of those that survived the last, which Python cannot read: "due" may be
    early, never late. ``counts``/``thresholds``: ``gc.get_count()``/``gc.get_threshold()``."""
    counts = gc.get_count() if counts is None else counts
    thresholds = gc.get_threshold() if thresholds is None else thresholds
    for generation in (2, 1):
        if counts[generation] > thresholds[generation]:
            return generation
    return 0


def full_collection_due() -> bool:
    """True when the next collection will be a full one (generation 2): see :func:`due_generation`."""
    return due_generation() == 2


_gc_lock = threading.Lock()
_gc_pauses = 0  # restores running now (a restore may run in a thread while another decodes)
_gc_was_enabled = False


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The cyclic garbage collector off while a restore builds millions of objects that all
    live on (each collection would walk them again: twice the time), and those objects frozen
    (``gc.freeze``) when it is done: turned back on, the collector would otherwise walk every
    one of them at once, holding the GIL (1.2 s after 100,000 allocations, here). The state is
    immutable and acyclic, freed by reference counting when replaced; what else is alive at
    that moment is frozen too (only a reference cycle among those objects that is dropped
    later is never collected). The freeze is O(1) and its count O(young objects): it runs on
    Raft's tick thread when a follower installs a snapshot (:func:`freeze`)."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    done = False
    try:
        yield
        done = True
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0:
                if done:
                    freeze()
                if _gc_was_enabled:
                    gc.enable()

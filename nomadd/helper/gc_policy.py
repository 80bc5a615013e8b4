"""The cyclic collector's thresholds a nomadd process runs with (the policy around them is
:mod:`nomadd.agent.runtime`; the scheduler's benchmark measures under them too)."""

from __future__ import annotations

__all__ = ["GC_THRESHOLDS"]

# The youngest generation is collected every 10,000 net container allocations (default 700):
# a server decoding and scheduling thousands of allocations a second spent 0.32 s of its CPU in
# the collector during `scripts/bench schedule` at 700, 0.10 s at 10,000 (objects here are
# mostly acyclic). Generation 1 every 5 of those (default 10): the longest pause of a large
# server is a generation-1 collection's, of at most about 50,000 objects (growing to 1,000,000
# allocations 105 ms, 266 ms with 10). Generation 2 keeps its default ratio (it is empty once
# the process is large enough to freeze: see nomadd/agent/runtime.py).
GC_THRESHOLDS = (10_000, 5, 10)

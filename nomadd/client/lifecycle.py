"""The order of an allocation's tasks by their ``lifecycle {}`` (Nomad's task hook coordinator).

:func:`run_in_order` runs the task runners of one allocation:

1. ``prestart`` tasks; the main tasks wait until every non-sidecar one finished successfully and
   every sidecar one runs. A prestart task that failed (or a sidecar that died) fails the
   allocation: the main tasks never start;
2. the main tasks (no lifecycle block); ``poststart`` tasks start once each main task runs (or
   already ended);
3. once every main task is dead, the sidecars and unfinished prestart/poststart tasks are
   stopped;
4. ``poststop`` tasks run to completion — also when the allocation was stopped.

``stopping()`` tells that the allocation is being stopped: its runner kills every task but the
poststop ones (:func:`stops_first`), so the phases above end early and the poststop tasks run.
A group without lifecycle blocks simply runs all its tasks at once. Cancelling (agent shutdown)
cancels the runners' coroutines, never the task processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence

from nomadd.client.task_runner import TaskRunner
from nomadd.structs.job import Task
from nomadd.structs.lifecycle import POSTSTART, POSTSTOP, PRESTART

__all__ = ["MAIN", "phase", "restarts_on_success", "run_in_order", "stops_first"]

MAIN = "main"


def phase(task: Task) -> str:
    return task.lifecycle.hook if task.lifecycle is not None else MAIN


def restarts_on_success(task: Task, service: bool) -> bool:
    """Service and system tasks restart after exiting 0, except those that run to completion
    (a lifecycle task that is not a sidecar)."""
    lifecycle = task.lifecycle
    return service and (lifecycle is None or lifecycle.sidecar)


def stops_first(runner: TaskRunner) -> bool:
    """Killed at once when the allocation stops (poststop tasks run after that)."""
    return phase(runner.task) != POSTSTOP


async def _wait_any(events: Iterable[asyncio.Event]) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _sidecar(r: TaskRunner) -> bool:
    return r.task.lifecycle is not None and r.task.lifecycle.sidecar


def _prestart_state(pre: Sequence[TaskRunner]) -> str:
    """``ready``, ``failed`` or ``waiting``."""
    waiting = False
    for r in pre:
        if r.done.is_set():
            if r.state.failed or _sidecar(r):
                return "failed"
        elif not (_sidecar(r) and r.started.is_set()):
            waiting = True
    return "waiting" if waiting else "ready"


async def run_in_order(
    runners: Sequence[TaskRunner], stopping: Callable[[], bool], wake: asyncio.Event
) -> None:
    """Run ``runners`` (one allocation's, in the group's task order) phase by phase; returns once
    every task is dead. ``wake`` is set whenever ``stopping()`` may have turned true."""
    by_phase: dict[str, list[TaskRunner]] = {PRESTART: [], MAIN: [], POSTSTART: [], POSTSTOP: []}
    for r in runners:
        by_phase[phase(r.task)].append(r)
    pre, main, post, stop = (by_phase[p] for p in (PRESTART, MAIN, POSTSTART, POSTSTOP))
    started: list[asyncio.Task[None]] = []

    def start(group: Iterable[TaskRunner]) -> None:
        started.extend(asyncio.ensure_future(r.run()) for r in group)

    try:
        start(pre)
        while (state := _prestart_state(pre)) == "waiting" and not stopping():
            await _wait_any([wake, *(r.done for r in pre), *(r.started for r in pre)])
        if state == "ready" and not stopping():
            start(main)
            if post:
                while not all(r.started.is_set() or r.done.is_set() for r in main) and not stopping():
                    await _wait_any([wake, *(r.done for r in main), *(r.started for r in main)])
                if not stopping() and not all(r.done.is_set() for r in main):
                    start(post)
        while not all(r.done.is_set() for r in main) and not stopping() and state == "ready":
            await _wait_any([wake, *(r.done for r in main)])
        # main tasks over (or never started, or the allocation stops): the others go first
        if not stopping():  # else the allocation's kill stops them
            ending = "main tasks dead" if state == "ready" else "prestart task failed"
            await asyncio.gather(*(r.kill(ending) for r in (*pre, *main, *post) if not r.done.is_set()))
        start(stop)
        await asyncio.gather(*started)
    finally:
        for t in started:
            if not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

"""Structured concurrency: a component's background tasks belong to its :class:`Supervisor`.

A component (the server, the client, the gossip pool, the plan applier...) owns one supervisor
and starts every background task with ``supervisor.spawn(coro, name, vital=...)`` instead of a
bare ``asyncio.create_task``. The supervisor:

* keeps a reference to each task until it ends (the loop itself only keeps weak ones);
* logs a task that ends with an exception, with its traceback — a background task never
  vanishes silently;
* for a *vital* task (one the agent cannot do its job without: the leader loop, the client's
  heartbeat...) also calls ``on_fatal(reason)``; the agent wires it to stop with exit status
  ``EX_SOFTWARE`` (70), so systemd restarts it, instead of running on half alive;
* ``cancel_all()`` cancels every task (leadership lost); ``aclose()`` cancels them, waits at most
  ``CLOSE_TIMEOUT_S`` for them to end, and refuses new ones (a task spawned after ``aclose`` is
  returned already cancelled: its coroutine never runs).

Cancellation is how tasks are stopped: a cancelled task is never reported as a failure, and a
task that returns normally is not one either (a vital loop may end on purpose, e.g. the leader
loop once leadership is lost). ``child(name)`` gives a sub-component its own supervisor that
reports fatal failures through this one's ``on_fatal``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

__all__ = ["CLOSE_TIMEOUT_S", "EX_SOFTWARE", "FatalHandler", "Supervisor"]

EX_SOFTWARE = 70  # sysexits.h: the exit status of an agent whose vital task died
CLOSE_TIMEOUT_S = 3.0  # aclose() waits this long for cancelled tasks (inside the agent's 10 s)

T = TypeVar("T")
FatalHandler = Callable[[str], None]


class Supervisor:
    def __init__(self, name: str, *, on_fatal: FatalHandler | None = None) -> None:
        self.name = name
        self.on_fatal = on_fatal
        self._tasks: dict[asyncio.Task[Any], bool] = {}  # task -> vital
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def child(self, name: str) -> Supervisor:
        """A supervisor for a sub-component: its own tasks, this one's fatal handler."""
        return Supervisor(name, on_fatal=self._fatal)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str, *, vital: bool = False) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._watch(task, vital)
        return task

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """Own a task something else created (a connection handler of ``asyncio.start_server``)."""
        if task not in self._tasks:
            self._watch(task, False)

    def _watch(self, task: asyncio.Task[Any], vital: bool) -> None:
        if self._closed:
            task.cancel()  # before its first step: the coroutine never runs
        self._tasks[task] = vital
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        vital = self._tasks.pop(task, False)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        logger.error(
            "background task failed component=%s task=%s vital=%s",
            self.name,
            task.get_name(),
            vital,
            exc_info=exc,
        )
        if vital:
            self._fatal(f"vital task {task.get_name()} of {self.name} failed: {exc!r}")

    def _fatal(self, reason: str) -> None:
        if self.on_fatal is None:
            logger.critical("vital task failed and nothing stops the agent component=%s", self.name)
            return
        try:
            self.on_fatal(reason)
        except Exception:
            logger.exception("fatal handler failed component=%s", self.name)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Cancel every task and wait (bounded) for them to end; later spawns are cancelled."""
        self._closed = True
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]  # never wait on itself
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            logger.warning(
                "tasks did not stop in time component=%s timeout=%.1fs tasks=%s",
                self.name,
                timeout,
                ",".join(sorted(t.get_name() for t in pending)),
            )

"""Supervisor: a task that dies is logged with its traceback (and, when vital, stops the agent
through ``on_fatal``); shutdown is bounded; cancellation is never a failure."""

from __future__ import annotations

import ast
import asyncio
import logging
import sys
import time
from pathlib import Path

import pytest

import nomadd.helper.supervisor
from nomadd.helper.supervisor import Supervisor
from tests.helpers import wait_until


async def _explode() -> None:
    await asyncio.sleep(0)
    raise ValueError("planted bug")


def _failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "nomadd.helper.supervisor" and r.levelno >= logging.ERROR]


def test_failing_task_is_logged_with_its_traceback_and_the_others_keep_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fatal: list[str] = []
    ticks = 0

    async def steady() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> None:
        sup = Supervisor("comp", on_fatal=fatal.append)
        sup.spawn(steady(), "steady")
        boom = sup.spawn(_explode(), "boom")
        await wait_until(boom.done)
        seen = ticks
        await wait_until(lambda: ticks > seen + 3)  # still running after the failure
        assert len(sup) == 1  # the dead task is no longer held
        await sup.aclose()

    with caplog.at_level(logging.ERROR, logger="nomadd.helper.supervisor"):
        asyncio.run(main())
    [record] = _failures(caplog)
    assert "component=comp task=boom vital=False" in record.getMessage()
    text = caplog.text
    assert "Traceback (most recent call last)" in text
    assert "in _explode" in text and "ValueError: planted bug" in text
    assert fatal == []  # not vital: the agent goes on


def test_failing_vital_task_calls_on_fatal_also_through_a_child(caplog: pytest.LogCaptureFixture) -> None:
    fatal: list[str] = []

    async def main() -> None:
        parent = Supervisor("server")
        child = parent.child("leader")
        parent.on_fatal = fatal.append  # wired after the children were made, as the agent may
        task = child.spawn(_explode(), "leader-loop", vital=True)
        await wait_until(task.done)
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="nomadd.helper.supervisor"):
        asyncio.run(main())
    assert len(fatal) == 1
    assert "leader-loop" in fatal[0] and "leader" in fatal[0] and "planted bug" in fatal[0]
    assert "Traceback" in caplog.text


def test_vital_failure_without_a_handler_or_with_a_broken_one_is_still_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(reason: str) -> None:
        raise RuntimeError("handler bug")

    async def main() -> None:
        for sup in (Supervisor("alone"), Supervisor("broken", on_fatal=broken)):
            task = sup.spawn(_explode(), "vital", vital=True)
            await wait_until(task.done)
            await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="nomadd.helper.supervisor"):
        asyncio.run(main())
    messages = [r.getMessage() for r in _failures(caplog)]
    assert any("nothing stops the agent component=alone" in m for m in messages)
    assert any("fatal handler failed component=broken" in m for m in messages)


def test_aclose_cancels_everything_within_the_bound(caplog: pytest.LogCaptureFixture) -> None:
    ran_after_close = False

    async def forever() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        done = asyncio.Event()

        async def stubborn() -> None:  # ignores cancellation until released
            while not done.is_set():
                try:
                    await done.wait()
                except asyncio.CancelledError:
                    continue

        async def late() -> None:
            nonlocal ran_after_close
            ran_after_close = True

        sup = Supervisor("comp")
        plain = [sup.spawn(forever(), f"forever-{i}", vital=True) for i in range(3)]
        sup.spawn(stubborn(), "stubborn")
        await asyncio.sleep(0)
        try:
            start = time.monotonic()
            await asyncio.wait_for(sup.aclose(timeout=0.2), 2.0)
            took = time.monotonic() - start
            assert 0.15 < took < 1.0
            assert all(t.cancelled() for t in plain)
            after = sup.spawn(late(), "late")  # refused: returned cancelled, never runs
            with pytest.raises(asyncio.CancelledError):
                await after
        finally:
            done.set()  # let the stubborn task end, whatever happened
        await wait_until(lambda: len(sup) == 0)

    with caplog.at_level(logging.WARNING, logger="nomadd.helper.supervisor"):
        asyncio.run(main())
    assert not ran_after_close
    assert "tasks did not stop in time component=comp timeout=0.2s tasks=stubborn" in caplog.text
    assert _failures(caplog) == []  # the cancelled vital tasks are not failures


def test_cancellation_and_normal_return_are_not_failures(caplog: pytest.LogCaptureFixture) -> None:
    fatal: list[str] = []

    async def forever() -> None:
        await asyncio.Event().wait()

    async def cancels_itself() -> None:  # e.g. re-raises a CancelledError from something it awaited
        raise asyncio.CancelledError

    async def returns() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        sup = Supervisor("comp", on_fatal=fatal.append)
        tasks = [
            sup.spawn(forever(), "cancelled", vital=True),
            sup.spawn(cancels_itself(), "self-cancelled", vital=True),
            sup.spawn(returns(), "returns", vital=True),
        ]
        await asyncio.sleep(0.01)
        sup.cancel_all()
        await asyncio.wait(tasks)
        assert len(sup) == 0
        # cancel_all does not close: leadership regained, the tasks start again
        again = sup.spawn(returns(), "again")
        await again
        assert not again.cancelled()

    with caplog.at_level(logging.DEBUG, logger="nomadd.helper.supervisor"):
        asyncio.run(main())
    assert fatal == []
    assert [r for r in caplog.records if r.name == "nomadd.helper.supervisor"] == []


def test_aclose_itself_can_be_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        sup = Supervisor("comp")
        gate = asyncio.Event()

        async def stubborn() -> None:
            while not gate.is_set():
                try:
                    await gate.wait()
                except asyncio.CancelledError:
                    continue

        sup.spawn(stubborn(), "stubborn")
        await asyncio.sleep(0)
        closer = asyncio.create_task(sup.aclose(timeout=30))
        try:
            await asyncio.sleep(0.05)
            closer.cancel()
            with pytest.raises(asyncio.CancelledError):  # the caller's cancellation is not swallowed
                await asyncio.wait_for(closer, 2.0)
        finally:
            gate.set()
        await wait_until(lambda: len(sup) == 0)

    asyncio.run(main())


def test_imports_only_the_stdlib() -> None:
    """The server, the client and the standalone gossip package all use it."""
    tree = ast.parse(Path(nomadd.helper.supervisor.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top == "__future__" or top in sys.stdlib_module_names, name

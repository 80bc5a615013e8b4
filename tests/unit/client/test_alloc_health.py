"""The client's allocation health tracker (task_states): min_healthy_time, failures, deadline."""

from __future__ import annotations

from nomadd.client.alloc_health import HealthTracker
from nomadd.structs.alloc import TaskState, TaskStatus
from nomadd.structs.policy import UpdateStrategy
from nomadd.structs.timeutil import NS_PER_S

RUNNING = TaskState(state=TaskStatus.RUNNING)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * NS_PER_S

    def __call__(self) -> int:
        return self.now


def tracker(clock: Clock, **kw: object) -> HealthTracker:
    strategy = UpdateStrategy(min_healthy_time=2 * NS_PER_S, healthy_deadline=10 * NS_PER_S, **kw)  # type: ignore[arg-type]
    return HealthTracker(strategy, ("a", "b"), clock)


def test_healthy_after_min_healthy_time_of_all_tasks_running() -> None:
    clock = Clock()
    t = tracker(clock)
    assert t.check({"a": RUNNING}) is None  # b not running yet
    clock.now += 5 * NS_PER_S
    assert t.check({"a": RUNNING, "b": RUNNING}) is None  # the clock starts now
    clock.now += 1 * NS_PER_S
    assert t.check({"a": RUNNING, "b": RUNNING}) is None
    clock.now += 1 * NS_PER_S
    assert t.check({"a": RUNNING, "b": RUNNING}) is True


def test_a_restart_starts_the_clock_again() -> None:
    clock = Clock()
    t = tracker(clock)
    assert t.check({"a": RUNNING, "b": RUNNING}) is None
    clock.now += 1_500_000_000
    restarted = TaskState(state=TaskStatus.RUNNING, restarts=1)
    assert t.check({"a": RUNNING, "b": restarted}) is None
    clock.now += 1_500_000_000
    assert t.check({"a": RUNNING, "b": restarted}) is None
    clock.now += 1 * NS_PER_S
    assert t.check({"a": RUNNING, "b": restarted}) is True


def test_failed_task_or_deadline_is_unhealthy() -> None:
    clock = Clock()
    assert tracker(clock).check({"a": RUNNING, "b": TaskState(state=TaskStatus.DEAD, failed=True)}) is False
    t = tracker(clock)
    clock.now += 11 * NS_PER_S
    assert t.check({"a": RUNNING}) is False


def test_with_checks_every_check_must_pass_for_min_healthy_time() -> None:
    """health_check = "checks": running tasks are not enough; the service checks must have passed
    for min_healthy_time too (not run yet counts as not passing), else the deadline decides."""
    clock = Clock()
    passing: list[bool | None] = [None]
    strategy = UpdateStrategy(
        min_healthy_time=2 * NS_PER_S, healthy_deadline=10 * NS_PER_S, health_check="checks"
    )
    t = HealthTracker(strategy, ("a", "b"), clock, checks=lambda: passing[0])
    both = {"a": RUNNING, "b": RUNNING}
    assert t.check(both) is None
    clock.now += 3 * NS_PER_S
    assert t.check(both) is None  # checks not run yet
    passing[0] = False
    clock.now += 3 * NS_PER_S
    assert t.check(both) is None
    passing[0] = True
    assert t.check(both) is None  # the clock starts when the checks pass
    clock.now += 2 * NS_PER_S
    assert t.check(both) is True
    failing = HealthTracker(strategy, ("a", "b"), clock, checks=lambda: False)
    assert failing.check(both) is None
    clock.now += 10 * NS_PER_S
    assert failing.check(both) is False  # healthy_deadline passed with a failing check
    task_states = HealthTracker(
        UpdateStrategy(min_healthy_time=2 * NS_PER_S, health_check="task_states"),
        ("a",),
        clock,
        checks=lambda: False,
    )
    assert task_states.check({"a": RUNNING}) is None
    clock.now += 2 * NS_PER_S
    assert task_states.check({"a": RUNNING}) is True  # task_states ignores the checks

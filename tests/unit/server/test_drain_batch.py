"""The drainer's batching (Nomad's handleTaskGroup): max_parallel migrating, health, system last."""

from __future__ import annotations

import dataclasses

import pytest

from nomadd.helper.jobspec import parse_hcl
from nomadd.scheduler.testing import mock_job, mock_node
from nomadd.server.drain_batch import alloc_health, group_to_mark, node_remaining, replacements_pending
from nomadd.structs.alloc import (
    Allocation,
    AllocClientStatus,
    AllocDesiredStatus,
    DesiredTransition,
    TaskState,
    TaskStatus,
)
from nomadd.structs.codec import from_api
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job
from nomadd.structs.migrate import DEFAULT_MIGRATE, MigrateStrategy
from nomadd.structs.node import DrainStrategy
from nomadd.structs.timeutil import NS_PER_S, format_time

NOW = 1_800_000_000 * NS_PER_S
MIGRATE = MigrateStrategy(max_parallel=2, min_healthy_time=10 * NS_PER_S)


def _alloc(i: int, node: str, *, started_s_ago: float | None = 60, **kw: object) -> Allocation:
    states = {}
    if started_s_ago is not None:
        started = format_time(NOW - int(started_s_ago * NS_PER_S))
        states = {"web": TaskState(state=TaskStatus.RUNNING, started_at=started)}
    alloc = Allocation(
        id=f"a{i}",
        name=f"web.web[{i}]",
        job_id="web",
        task_group="web",
        node_id=node,
        client_status=AllocClientStatus.RUNNING if states else AllocClientStatus.PENDING,
        task_states=states,
        create_time=NOW - 60 * NS_PER_S,
    )
    return dataclasses.replace(alloc, **kw)  # type: ignore[arg-type]


def _group(count: int = 6, migrate: MigrateStrategy = MIGRATE) -> object:
    job = mock_job(count=count)
    return dataclasses.replace(job.task_groups[0], migrate=migrate)


def test_marks_max_parallel_of_the_healthy_allocations_on_draining_nodes() -> None:
    tg = _group()
    allocs = [_alloc(i, "n1") for i in range(6)]
    marked = group_to_mark(tg, allocs, {"n1"}, NOW)  # type: ignore[arg-type]
    assert [a.id for a in marked] == ["a0", "a1"]


def test_marks_more_only_as_replacements_become_healthy() -> None:
    tg = _group()
    migrating = [_alloc(i, "n1", desired_transition=DesiredTransition(migrate=True)) for i in range(2)]
    waiting = [_alloc(i, "n1") for i in range(2, 6)]
    young = [_alloc(10 + i, "n2", started_s_ago=3) for i in range(2)]  # running 3 s of the 10 needed
    allocs = migrating + waiting + young
    assert group_to_mark(tg, allocs, {"n1"}, NOW) == []  # type: ignore[arg-type]
    one_healthy = [*migrating, *waiting, young[0], _alloc(11, "n2", started_s_ago=10)]
    assert [a.id for a in group_to_mark(tg, one_healthy, {"n1"}, NOW)] == ["a2"]  # type: ignore[arg-type]


def test_stopped_and_pending_allocations_do_not_count_as_healthy() -> None:
    tg = _group(count=3, migrate=MigrateStrategy(max_parallel=1, min_healthy_time=0))
    allocs = [
        _alloc(0, "n1", desired_status=AllocDesiredStatus.STOP),
        _alloc(1, "n1"),
        _alloc(2, "n1"),
        _alloc(3, "n2", started_s_ago=None),  # pending replacement of a0
    ]
    assert group_to_mark(tg, allocs, {"n1"}, NOW) == []  # type: ignore[arg-type]


def test_health_reported_by_the_client_wins_and_unhealthy_counts_as_settled() -> None:
    failed = _alloc(1, "n2", client_status=AllocClientStatus.FAILED)
    assert alloc_health(failed, MIGRATE, NOW) is False
    assert alloc_health(_alloc(2, "n2", started_s_ago=1), MIGRATE, NOW) is None
    old_pending = _alloc(3, "n2", started_s_ago=None, create_time=NOW - 6 * 60 * NS_PER_S)
    assert alloc_health(old_pending, DEFAULT_MIGRATE, NOW) is False  # past healthy_deadline
    with_report = _alloc(4, "n2", started_s_ago=1)
    with_report = _FakeReported(with_report)  # type: ignore[assignment]
    assert alloc_health(with_report, MIGRATE, NOW) is True


class _FakeReported:
    """An allocation whose client reported ``DeploymentStatus.Healthy`` (API mapping form)."""

    def __init__(self, alloc: Allocation) -> None:
        self._alloc = alloc
        self.deployment_status = {"Healthy": True}

    def __getattr__(self, name: str) -> object:
        return getattr(self._alloc, name)


def test_system_allocations_are_kept_apart_and_ignored_when_the_drain_says_so() -> None:
    node = mock_node("n1", drain_strategy=DrainStrategy(deadline=0))
    service = _alloc(0, "n1", job_type="service")
    system = _alloc(1, "n1", job_type="system")
    done = _alloc(2, "n1", job_type="service", client_status=AllocClientStatus.COMPLETE)
    assert node_remaining(node, [service, system, done]) == ([service], [system])
    ignoring = mock_node("n1", drain_strategy=DrainStrategy(deadline=0, ignore_system_jobs=True))
    assert node_remaining(ignoring, [system]) == ([], [])


def test_migrate_block_defaults_parse_and_validation() -> None:
    job = from_api(Job, {"ID": "web", "TaskGroups": [{"Name": "g", "Count": 1}]}, path="Job").canonicalize()
    assert job.task_groups[0].migrate == DEFAULT_MIGRATE
    batch = from_api(Job, {"ID": "b", "Type": "batch", "TaskGroups": [{"Name": "g"}]}, path="Job")
    assert batch.canonicalize().task_groups[0].migrate is None
    hcl = """
    job "web" {
      group "g" {
        migrate {
          max_parallel = 2
          health_check = "task_states"
          min_healthy_time = "2s"
          healthy_deadline = "1m"
        }
        task "t" {
          driver = "raw_exec"
        }
      }
    }
    """
    api = parse_hcl(hcl)
    assert api["TaskGroups"][0]["Migrate"] == {
        "MaxParallel": 2,
        "HealthCheck": "task_states",
        "MinHealthyTime": 2 * NS_PER_S,
        "HealthyDeadline": 60 * NS_PER_S,
    }
    parsed = from_api(Job, api, path="Job").canonicalize()
    assert parsed.task_groups[0].migrate == MigrateStrategy(
        max_parallel=2,
        health_check="task_states",
        min_healthy_time=2 * NS_PER_S,
        healthy_deadline=60 * NS_PER_S,
    )
    bad = dataclasses.replace(
        parsed.task_groups[0], migrate=MigrateStrategy(max_parallel=-1, health_check="x", min_healthy_time=-1)
    )
    with pytest.raises(ValidationError) as err:
        dataclasses.replace(parsed, task_groups=(bad,)).validate()
    text = str(err.value)
    assert "TaskGroups[0].Migrate.MaxParallel: must be >= 0" in text
    assert "TaskGroups[0].Migrate.HealthCheck: invalid value 'x'" in text
    assert "TaskGroups[0].Migrate.MinHealthyTime: duration must be >= 0" in text
    on_batch = dataclasses.replace(batch, task_groups=(dataclasses.replace(bad, migrate=MIGRATE),))
    with pytest.raises(ValidationError, match="job type 'batch' does not allow a migrate block"):
        on_batch.canonicalize().validate()


def test_job_level_migrate_goes_to_the_groups_without_one() -> None:
    hcl = """
    job "web" {
      migrate {
        max_parallel = 3
      }
      group "a" {
        task "t" {
          driver = "raw_exec"
        }
      }
      group "b" {
        migrate {
          max_parallel = 2
        }
        task "t" {
          driver = "raw_exec"
        }
      }
    }
    """
    api = parse_hcl(hcl)
    assert api["Migrate"] == {"MaxParallel": 3}
    job = from_api(Job, api, path="Job").canonicalize()
    assert [tg.migrate.max_parallel for tg in job.task_groups if tg.migrate] == [3, 2]


def test_health_is_judged_on_main_tasks_and_sidecars() -> None:
    from nomadd.structs.job import Task
    from nomadd.structs.lifecycle import TaskLifecycle

    job = mock_job()
    tg = job.task_groups[0]
    tasks = (
        *tg.tasks,
        Task(name="init", driver="raw_exec", lifecycle=TaskLifecycle(hook="prestart")),
        Task(name="proxy", driver="raw_exec", lifecycle=TaskLifecycle(hook="prestart", sidecar=True)),
        Task(name="bye", driver="raw_exec", lifecycle=TaskLifecycle(hook="poststop")),
    )
    job = dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=tasks),))
    base = _alloc(0, "n2", job=job)
    started = base.task_states["web"]
    states = {
        "web": started,
        "init": TaskState(state=TaskStatus.DEAD, started_at=started.started_at),
        "proxy": started,
        "bye": TaskState(state=TaskStatus.PENDING),
    }
    assert alloc_health(dataclasses.replace(base, task_states=states), MIGRATE, NOW) is True
    waiting = {**states, "proxy": TaskState(state=TaskStatus.PENDING)}  # the sidecar counts
    assert alloc_health(dataclasses.replace(base, task_states=waiting), MIGRATE, NOW) is None


def test_drain_completes_only_when_the_replacements_run() -> None:
    """An allocation migrated off the node holds the drain's completion until its replacement's
    health is known (running for min_healthy_time, or failed): the work runs elsewhere first."""
    job = mock_job("web")
    job = dataclasses.replace(
        job, task_groups=(dataclasses.replace(job.task_groups[0], name="web", migrate=MIGRATE),)
    )
    moved = _alloc(
        0,
        "n1",
        job=job,
        desired_status=AllocDesiredStatus.STOP,
        client_status=AllocClientStatus.COMPLETE,
        desired_transition=DesiredTransition(migrate=True),
        next_allocation="r0",
    )
    starting = _alloc(9, "n2", id="r0", started_s_ago=None, create_time=NOW - NS_PER_S)
    young = _alloc(9, "n2", id="r0", started_s_ago=2)
    healthy = _alloc(9, "n2", id="r0", started_s_ago=20)
    failed = _alloc(9, "n2", id="r0", client_status=AllocClientStatus.FAILED)
    assert replacements_pending([moved], lambda i: starting, NOW) == ["r0"]
    assert replacements_pending([moved], lambda i: young, NOW) == ["r0"]
    assert replacements_pending([moved], lambda i: healthy, NOW) == []
    assert replacements_pending([moved], lambda i: failed, NOW) == []
    assert replacements_pending([moved], lambda i: None, NOW) == []
    unmarked = dataclasses.replace(moved, desired_transition=DesiredTransition())
    assert replacements_pending([unmarked], lambda i: starting, NOW) == []

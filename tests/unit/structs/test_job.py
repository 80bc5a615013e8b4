from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest

from nomadd.structs.codec import from_api, to_api
from nomadd.structs.constraint import Constraint
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job, JobStatus, JobType, Task, TaskGroup
from nomadd.structs.policy import ReschedulePolicy, RestartPolicy
from nomadd.structs.resources import Resources
from nomadd.structs.summary import JobSummary
from nomadd.structs.timeutil import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_S

DRIVERS = {"raw_exec", "exec"}


def api_job(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "ID": "web",
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 3,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "raw_exec",
                        "Config": {"command": "/bin/sleep", "args": ["60"]},
                    }
                ],
            }
        ],
    }
    doc.update(over)
    return doc


def read(doc: dict[str, object]) -> Job:
    return from_api(Job, doc, path="Job").canonicalize()


def test_canonicalize_fills_nomad_defaults() -> None:
    job = read(api_job())
    assert job.name == "web"
    assert job.type == JobType.SERVICE
    assert job.priority == 50
    assert job.namespace == "default"
    assert job.region == "global"
    tg = job.task_groups[0]
    assert tg.restart_policy == RestartPolicy(attempts=2, interval=30 * NS_PER_MINUTE, delay=15 * NS_PER_S)
    assert tg.reschedule_policy == ReschedulePolicy()
    task = tg.tasks[0]
    assert task.resources == Resources(cpu=100, memory_mb=300)
    assert task.log_config.max_files == 10
    assert task.log_config.max_file_size_mb == 10
    assert task.kill_timeout == 5 * NS_PER_S
    job.validate(DRIVERS)


def test_count_defaults_to_one_but_zero_is_kept() -> None:
    doc = api_job()
    doc["TaskGroups"] = [{"Name": "a", "Tasks": [{"Name": "t", "Driver": "exec"}]}]
    assert read(doc).task_groups[0].count == 1
    doc["TaskGroups"] = [{"Name": "a", "Count": 0, "Tasks": [{"Name": "t", "Driver": "exec"}]}]
    assert read(doc).task_groups[0].count == 0


def test_batch_and_system_defaults() -> None:
    batch = read(api_job(Type="batch")).task_groups[0]
    assert batch.restart_policy is not None
    assert batch.restart_policy.attempts == 3
    assert batch.restart_policy.interval == 24 * NS_PER_HOUR
    assert batch.reschedule_policy is not None
    assert batch.reschedule_policy.attempts == 1
    assert not batch.reschedule_policy.unlimited
    doc = api_job(Type="system")
    doc["TaskGroups"][0]["Count"] = 1  # type: ignore[index]
    system = read(doc)
    assert system.task_groups[0].reschedule_policy is None
    system.validate(DRIVERS)


def test_explicit_policy_is_kept() -> None:
    doc = api_job()
    doc["TaskGroups"][0]["RestartPolicy"] = {  # type: ignore[index]
        "Attempts": 5,
        "Interval": 60 * NS_PER_S,
        "Delay": NS_PER_S,
        "Mode": "delay",
    }
    rp = read(doc).task_groups[0].restart_policy
    assert rp is not None
    assert (rp.attempts, rp.interval, rp.delay, str(rp.mode)) == (5, 60 * NS_PER_S, NS_PER_S, "delay")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.pop("ID"), "Job.ID: missing job ID"),
        (lambda d: d.update(ID="a b"), "Job.ID: job ID contains a space"),
        (lambda d: d.pop("Datacenters"), "Job.Datacenters: missing job datacenters"),
        (lambda d: d.update(TaskGroups=[]), "Job.TaskGroups: missing job task groups"),
        (lambda d: d.update(Priority=101), "Job.Priority: must be between 1 and 100"),
        (lambda d: d["TaskGroups"][0].update(Count=-1), "Job.TaskGroups[0].Count: must be >= 0"),
        (lambda d: d["TaskGroups"][0].update(Tasks=[]), "Job.TaskGroups[0].Tasks: missing tasks"),
        (
            lambda d: d["TaskGroups"][0]["Tasks"][0].pop("Driver"),
            "Job.TaskGroups[0].Tasks[0].Driver: missing task driver",
        ),
        (
            lambda d: d["TaskGroups"][0]["Tasks"][0].update(Driver="docker"),
            "Job.TaskGroups[0].Tasks[0].Driver: unknown driver 'docker'",
        ),
        (
            lambda d: d["TaskGroups"][0]["Tasks"][0].pop("Name"),
            "Job.TaskGroups[0].Tasks[0].Name: missing task name",
        ),
        (
            lambda d: d["TaskGroups"][0]["Tasks"][0].update(KillTimeout=-5),
            "Job.TaskGroups[0].Tasks[0].KillTimeout: duration must be >= 0",
        ),
        (
            lambda d: d["TaskGroups"][0]["Tasks"][0].update(Resources={"MemoryMB": 5}),
            "Job.TaskGroups[0].Tasks[0].Resources.MemoryMB: minimum MemoryMB value is 10; got 5",
        ),
        (
            lambda d: d["TaskGroups"][0]["Tasks"][0].update(Resources={"CPU": 0}),
            "Job.TaskGroups[0].Tasks[0].Resources.CPU: minimum CPU value is 1; got 0",
        ),
        (
            lambda d: d["TaskGroups"][0].update(RestartPolicy={"Attempts": 1, "Interval": -1, "Delay": 0}),
            "Job.TaskGroups[0].RestartPolicy.Interval: duration must be >= 0",
        ),
        (
            lambda d: d.update(Constraints=[{"LTarget": "${attr.x}", "Operand": "~", "RTarget": "1"}]),
            "Job.Constraints[0].Operand: unknown constraint operand '~'",
        ),
        (
            lambda d: d.update(Constraints=[{"LTarget": "${attr.x}", "Operand": "regexp", "RTarget": "("}]),
            "Job.Constraints[0].RTarget: invalid regular expression",
        ),
        (
            lambda d: d["TaskGroups"].append(d["TaskGroups"][0]),
            "Job.TaskGroups[1].Name: duplicate task group name 'g'",
        ),
    ],
)
def test_validate_names_the_field(change: object, fragment: str) -> None:
    doc = json.loads(json.dumps(api_job()))
    change(doc)  # type: ignore[operator]
    with pytest.raises(ValidationError) as exc:
        read(doc).validate(DRIVERS)
    assert fragment in str(exc.value)
    assert exc.value.code == 400


def test_validate_lists_all_problems() -> None:
    doc = api_job()
    doc.pop("ID")
    doc.pop("Datacenters")
    with pytest.raises(ValidationError) as exc:
        read(doc).validate(DRIVERS)
    assert "Job.ID" in str(exc.value)
    assert "Job.Datacenters" in str(exc.value)


def test_unknown_drivers_not_checked_without_a_list() -> None:
    doc = api_job()
    doc["TaskGroups"][0]["Tasks"][0]["Driver"] = "docker"  # type: ignore[index]
    read(doc).validate(None)


def test_bad_type_value_names_field() -> None:
    with pytest.raises(ValidationError, match=r"^Job\.Type: invalid value 'cron'"):
        read(api_job(Type="cron"))


def test_constraint_operands() -> None:
    ok = [
        Constraint(l_target="${attr.kernel.name}", r_target="linux", operand="="),
        Constraint(l_target="${attr.kernel.name}", r_target="linux", operand="!="),
        Constraint(l_target="${attr.nomad.version}", r_target=">= 0.1, < 2", operand="version"),
        Constraint(l_target="${meta.tags}", r_target="a,b", operand="set_contains"),
        Constraint(operand="distinct_hosts"),
        Constraint(l_target="${meta.rack}", operand="is_set"),
    ]
    for c in ok:
        assert c.problems() == [], c
    assert Constraint(l_target="${x}", r_target="abc", operand="version").problems()
    assert Constraint(l_target="${x}", operand=">").problems()
    assert Constraint(r_target="x", operand="=").problems()


def test_spec_equal_ignores_bookkeeping() -> None:
    job = read(api_job())
    registered = dataclasses.replace(
        job,
        version=3,
        status=JobStatus.RUNNING,
        submit_time=123,
        create_index=5,
        modify_index=9,
        job_modify_index=9,
        stable=True,
    )
    assert job.spec_equal(registered)
    bigger = dataclasses.replace(job, task_groups=(dataclasses.replace(job.task_groups[0], count=4),))
    assert not job.spec_equal(bigger)
    assert not job.spec_equal(dataclasses.replace(job, meta={"a": "b"}))


def test_stub_and_round_trip() -> None:
    job = read(api_job())
    summary = JobSummary.compute(
        job_id="web",
        namespace="default",
        groups=["g"],
        allocs=[("g", "running"), ("g", "pending"), ("g", "failed")],
        queued={"g": 1},
    )
    stub = to_api(job.stub(summary))
    assert stub["ID"] == "web"
    assert stub["Type"] == "service"
    assert stub["JobSummary"]["Summary"]["g"] == {  # type: ignore[index]
        "Queued": 1,
        "Complete": 0,
        "Failed": 1,
        "Running": 1,
        "Starting": 1,
        "Lost": 0,
        "Unknown": 0,
    }
    assert from_api(Job, json.loads(json.dumps(to_api(job)))) == job


def test_group_resources_sum_tasks() -> None:
    tg = TaskGroup(
        name="g",
        tasks=(
            Task(name="a", resources=Resources(cpu=200, memory_mb=100)),
            Task(name="b", resources=Resources(cpu=50, memory_mb=20)),
        ),
    )
    assert tg.resources() == (250, 120, 300)


def test_reads_nomad_job_run_output_json() -> None:
    """The shape `nomad job run -output` prints: nulls everywhere, many keys we do not model."""
    path = pathlib.Path(__file__).parent / "data" / "nomad_job_run_output.json"
    doc = json.loads(path.read_text())
    job = from_api(Job, doc["Job"], path="Job").canonicalize()
    job.validate(DRIVERS)
    assert job.id == "example"
    assert job.priority == 50
    assert job.datacenters == ("*",)
    tg = job.task_groups[0]
    assert tg.name == "cache"
    assert tg.restart_policy == RestartPolicy()
    assert tg.update is not None  # the job's Update block applies to service groups
    task = tg.tasks[0]
    assert task.resources == Resources(cpu=500, memory_mb=256)
    assert task.config == {"command": "/bin/sleep", "args": ["3600"]}
    assert task.kill_timeout == 5 * NS_PER_S
    with pytest.raises(ValidationError, match=r"unknown field"):
        from_api(Job, doc["Job"], path="Job", strict=True)

"""Periodic and parameterized job structs: cron arithmetic (Nomad's cronexpr field layouts),
time zones, validation, API and HCL parsing."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from nomadd.helper.jobspec import parse_hcl
from nomadd.structs.codec import from_api, to_api
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job
from nomadd.structs.nomad_api import check_supported
from nomadd.structs.periodic import (
    DispatchPayloadConfig,
    ParameterizedJobConfig,
    PeriodicConfig,
    launch_time_of,
    meta_problem,
    next_launch,
    parameterized_problems,
    payload_file_problem,
    periodic_child_id,
    periodic_problems,
)

NS = 1_000_000_000


def ns(dt: datetime.datetime) -> int:
    return int(dt.timestamp()) * NS


def utc(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.UTC)


def test_next_launch_five_fields_is_strictly_after() -> None:
    cfg = PeriodicConfig(spec="*/15 * * * *")
    assert next_launch(cfg, ns(utc(2026, 3, 1, 10, 7))) == ns(utc(2026, 3, 1, 10, 15))
    assert next_launch(cfg, ns(utc(2026, 3, 1, 10, 15))) == ns(utc(2026, 3, 1, 10, 30))
    assert next_launch(cfg, ns(utc(2026, 3, 1, 10, 15)) + 1) == ns(utc(2026, 3, 1, 10, 30))


def test_next_launch_seven_fields_have_seconds_and_six_fields_a_year() -> None:
    every2 = PeriodicConfig(spec="*/2 * * * * * *")
    assert next_launch(every2, ns(utc(2026, 3, 1, 10, 0, 1))) == ns(utc(2026, 3, 1, 10, 0, 2))
    in_2030 = PeriodicConfig(spec="0 12 1 1 * 2030")  # cronexpr: minute hour dom month dow year
    assert next_launch(in_2030, ns(utc(2026, 1, 1))) == ns(utc(2030, 1, 1, 12, 0))
    past = PeriodicConfig(spec="0 12 1 1 * 2020")
    assert next_launch(past, ns(utc(2026, 1, 1))) is None


def test_next_launch_earliest_of_crons_and_shorthands() -> None:
    cfg = PeriodicConfig(specs=("0 9 * * *", "30 8 * * *"))
    assert next_launch(cfg, ns(utc(2026, 3, 1, 8, 0))) == ns(utc(2026, 3, 1, 8, 30))
    assert next_launch(PeriodicConfig(spec="@hourly"), ns(utc(2026, 3, 1, 8, 1))) == ns(utc(2026, 3, 1, 9))


def test_time_zone_and_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    cfg = PeriodicConfig(spec="30 2 * * *", time_zone="Europe/Berlin")
    start = ns(datetime.datetime(2026, 1, 10, 12, 0, tzinfo=berlin))
    assert next_launch(cfg, start) == ns(datetime.datetime(2026, 1, 11, 2, 30, tzinfo=berlin))
    # 2026-03-29 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00): no launch that day
    before = ns(datetime.datetime(2026, 3, 28, 12, 0, tzinfo=berlin))
    after_gap = next_launch(cfg, ns(datetime.datetime(2026, 3, 29, 0, 0, tzinfo=berlin)))
    assert next_launch(cfg, before) is not None and after_gap is not None
    assert after_gap > ns(datetime.datetime(2026, 3, 29, 0, 0, tzinfo=berlin))
    utc_cfg = PeriodicConfig(spec="30 2 * * *")
    assert next_launch(utc_cfg, ns(utc(2026, 1, 10, 12))) == ns(utc(2026, 1, 11, 2, 30))


@pytest.mark.parametrize(
    ("cfg", "job_type", "problem"),
    [
        (PeriodicConfig(spec="* * * * *"), "service", "batch"),
        (PeriodicConfig(), "batch", "Must specify a spec"),
        (PeriodicConfig(spec="* * * * *", specs=("* * * * *",)), "batch", "Only cron or crons"),
        (PeriodicConfig(spec="61 * * * *"), "batch", "Invalid cron spec"),
        (PeriodicConfig(spec="* * *"), "batch", "Invalid cron spec"),
        (PeriodicConfig(spec="* * * * *", time_zone="Mars/Olympus"), "batch", "Invalid time zone"),
        (PeriodicConfig(spec="* * * * *", time_zone="../../etc/passwd"), "batch", "Invalid time zone"),
        (PeriodicConfig(spec="* * * * *", time_zone="Europe"), "batch", "Invalid time zone"),  # a directory
        (PeriodicConfig(spec="* * * * *", time_zone="x" * 5000), "batch", "Invalid time zone"),
        (PeriodicConfig(spec="9" * 5000 + " * * * *"), "batch", "Invalid cron spec"),
        (PeriodicConfig(spec="* * * * *", spec_type="test"), "batch", "Unknown periodic specification"),
    ],
)
def test_periodic_validation(cfg: PeriodicConfig, job_type: str, problem: str) -> None:
    errs = periodic_problems(cfg, job_type)
    assert any(problem in e for e in errs), errs


def test_disabled_periodic_and_good_specs_validate() -> None:
    assert periodic_problems(PeriodicConfig(enabled=False, spec="junk"), "service") == []
    assert periodic_problems(PeriodicConfig(specs=("*/5 * * * * * *", "@daily")), "batch") == []


def test_parameterized_validation_and_meta_rules() -> None:
    assert parameterized_problems(ParameterizedJobConfig(), "batch") == []
    errs = parameterized_problems(
        ParameterizedJobConfig(payload="sometimes", meta_required=("a",), meta_optional=("a",)), "service"
    )
    assert len(errs) == 3, errs
    assert meta_problem(("a",), ("b",), {"a": "1", "b": "2"}) == ""
    assert "unpermitted" in meta_problem(("a",), (), {"a": "1", "c": "2"})
    assert "required meta" in meta_problem(("a",), (), {})


@pytest.mark.parametrize(
    ("file", "ok"),
    [("in.txt", True), ("sub/in.json", True), ("../in.txt", True), ("../../x", False), ("/etc/x", False)],
)
def test_payload_file_must_stay_in_the_task_dir(file: str, ok: bool) -> None:
    # local/../in.txt is the task dir itself, as Nomad's PathEscapesAllocViaRelative("task/local/")
    assert (payload_file_problem(DispatchPayloadConfig(file=file)) == "") is ok


def test_child_ids() -> None:
    launch = ns(utc(2026, 3, 1, 10, 0, 2))
    child = periodic_child_id("nightly", launch)
    assert child == f"nightly/periodic-{launch // NS}"
    assert launch_time_of(child) == launch
    assert launch_time_of("nightly") is None and launch_time_of("a/periodic-x") is None


def _api_job(**extra: object) -> dict[str, object]:
    task = {"Name": "t", "Driver": "raw_exec", "Resources": {"CPU": 100, "MemoryMB": 64}}
    task.update(extra.pop("task", {}))  # type: ignore[call-overload]
    return {
        "ID": "j",
        "Type": "batch",
        "Datacenters": ["dc1"],
        "TaskGroups": [{"Name": "g", "Tasks": [task]}],
    } | extra


def test_api_round_trip_and_validation() -> None:
    raw = _api_job(
        Periodic={"Spec": "*/5 * * * *", "ProhibitOverlap": True, "TimeZone": "America/New_York"},
        ParameterizedJob={"Payload": "required", "MetaRequired": ["k"]},
        task={"DispatchPayload": {"File": "in.txt"}},
    )
    check_supported(Job, raw, "Job")
    job = from_api(Job, raw, path="Job").canonicalize()
    assert job.periodic == PeriodicConfig(
        spec="*/5 * * * *", prohibit_overlap=True, time_zone="America/New_York"
    )
    assert job.parameterized_job == ParameterizedJobConfig(payload="required", meta_required=("k",))
    assert job.task_groups[0].tasks[0].dispatch_payload == DispatchPayloadConfig(file="in.txt")
    job.validate()
    assert job.is_template() and job.is_parameterized() and not job.is_periodic_active()
    out = to_api(job)
    assert out["Periodic"]["Enabled"] is True and out["ParameterizedJob"]["MetaRequired"] == ["k"]
    assert out["TaskGroups"][0]["Tasks"][0]["DispatchPayload"] == {"File": "in.txt"}
    stub = to_api(job.stub())
    assert stub["Periodic"] is True and stub["ParameterizedJob"] is True


def test_invalid_periodic_job_is_refused_naming_the_field() -> None:
    job = from_api(Job, _api_job(Type="service", Periodic={"Spec": "nope"}), path="Job").canonicalize()
    with pytest.raises(ValidationError) as err:
        job.validate()
    assert "Job.Periodic" in str(err.value) and "Invalid cron spec" in str(err.value)


def test_hcl_blocks() -> None:
    doc = parse_hcl(
        """
        job "report" {
          type = "batch"
          datacenters = ["dc1"]
          periodic {
            crons            = ["0 */6 * * *"]
            prohibit_overlap = true
            time_zone        = "Europe/Berlin"
          }
          parameterized {
            payload       = "optional"
            meta_optional = ["who"]
          }
          group "g" {
            task "t" {
              driver = "raw_exec"
              dispatch_payload { file = "input.json" }
              resources { cpu = 100 }
            }
          }
        }
        """
    )
    job = from_api(Job, doc, path="Job", strict=True)
    assert job.periodic == PeriodicConfig(
        specs=("0 */6 * * *",), prohibit_overlap=True, time_zone="Europe/Berlin"
    )
    assert job.parameterized_job == ParameterizedJobConfig(meta_optional=("who",))
    assert job.task_groups[0].tasks[0].dispatch_payload == DispatchPayloadConfig(file="input.json")

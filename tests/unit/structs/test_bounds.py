"""Issue 10: every bound a caller can hit is refused with a message naming the field or limit."""

from __future__ import annotations

import copy

import msgpack  # type: ignore[import-untyped,unused-ignore]
import pytest

from nomadd.structs.codec import from_api, from_wire_checked, pack
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job
from nomadd.structs.limits import Limits
from nomadd.structs.requests.job import JobRegisterRequest
from tests.unit.structs.test_job import DRIVERS, api_job


def task(doc: dict[str, object]) -> dict[str, object]:
    return doc["TaskGroups"][0]["Tasks"][0]  # type: ignore[index,no-any-return]


def group(doc: dict[str, object]) -> dict[str, object]:
    return doc["TaskGroups"][0]  # type: ignore[index,no-any-return]


def refused(doc: dict[str, object], limits: Limits | None = None) -> str:
    try:
        from_api(Job, doc, path="Job").canonicalize().validate(DRIVERS, limits or Limits())
    except ValidationError as err:
        return str(err)
    raise AssertionError("accepted")


@pytest.mark.parametrize(
    ("where", "field", "value", "message"),
    [
        ("group", "Count", 2**70, "Job.TaskGroups[0].Count: integer out of the 64-bit range"),
        (
            "task",
            "KillTimeout",
            2**70,
            "Job.TaskGroups[0].Tasks[0].KillTimeout: integer out of the 64-bit range",
        ),
        ("task", "Resources", {"CPU": 2**70}, "Tasks[0].Resources.CPU: integer out of the 64-bit range"),
        ("task", "Resources", {"MemoryMB": 1e300}, "Resources.MemoryMB: integer out of the 64-bit range"),
        ("task", "Resources", {"MemoryMB": 10**18}, "Resources.MemoryMB: maximum value is"),
        ("task", "Resources", {"DiskMB": -5}, "Resources.DiskMB: must be >= 0"),
        ("task", "Config", {"n": 2**70}, "Tasks[0].Config.n: integer out of the 64-bit range"),
        ("task", "Config", {"x": float("inf")}, "Tasks[0].Config.x: number must be finite"),
        (
            "group",
            "RestartPolicy",
            {"Attempts": 2**70},
            "RestartPolicy.Attempts: integer out of the 64-bit range",
        ),
        ("job", "Priority", 101, "Job.Priority: must be between 1 and 100"),
        ("job", "Priority", 0 - 1, "Job.Priority: must be between 1 and 100"),
    ],
)
def test_numbers_out_of_range(where: str, field: str, value: object, message: str) -> None:
    doc = api_job()
    target = {"job": doc, "group": group(doc), "task": task(doc)}[where]
    target[field] = value
    assert message in refused(doc)


def test_sizes_against_the_configured_limits() -> None:
    doc = api_job(ID="x" * 300)
    assert "Job.ID: length 300 exceeds the limit of 256 (max_id_length)" in refused(doc)
    doc = api_job(Name="n" * 1_000_000)
    assert "Job.Name: length 1000000 exceeds the limit of 256 (max_name_length)" in refused(doc)
    doc = api_job(Datacenters=[f"dc{i}" for i in range(100_000)])
    assert "Job.Datacenters: 100000 entries exceed the limit of 100 (max_datacenters)" in refused(doc)
    doc = api_job()
    doc["TaskGroups"] = [copy.deepcopy(group(doc)) | {"Name": f"g{i}"} for i in range(2000)]
    assert "Job.TaskGroups: 2000 entries exceed the limit of 100 (max_task_groups)" in refused(doc)
    doc = api_job(Meta={"k": "v" * 12_000_000})
    assert "Job.Meta['k']: length 12000000 exceeds the limit of 8192 (max_meta_value_length)" in refused(doc)
    doc = api_job(Meta={f"k{i}": "v" for i in range(300)})
    assert "(max_meta_entries)" in refused(doc)
    doc = api_job()
    group(doc)["Count"] = 101
    assert "Job.TaskGroups[0].Count: 101 exceeds the limit of 100 (max_group_count)" in refused(
        doc, Limits(max_group_count=100)
    )
    task(doc)["Constraints"] = [{"LTarget": "${attr.kernel.name}", "RTarget": "linux"}] * 101
    assert "Tasks[0].Constraints: 101 entries exceed the limit of 100 (max_constraints)" in refused(doc)


def test_a_billion_count_is_valid_by_default() -> None:
    doc = api_job()
    group(doc)["Count"] = 10**9
    from_api(Job, doc, path="Job").canonicalize().validate(DRIVERS)


def test_wire_input_is_checked_the_same_way() -> None:
    job = from_api(Job, api_job(), path="Job").canonicalize()
    wire = msgpack.unpackb(pack(JobRegisterRequest(job=job)), raw=False)
    wire["job"]["task_groups"][0]["count"] = 2**64
    with pytest.raises(ValidationError, match=r"job.task_groups\[0\].count: integer out of the 64-bit range"):
        from_wire_checked(JobRegisterRequest, wire)
    wire["job"]["task_groups"][0]["count"] = "5"
    with pytest.raises(ValidationError, match="count: expected integer"):
        from_wire_checked(JobRegisterRequest, wire)

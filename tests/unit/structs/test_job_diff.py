"""Job diffs in Nomad's JobDiff shape and the plan's annotations of them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from nomadd.scheduler.testing import mock_job
from nomadd.structs.constraint import Constraint
from nomadd.structs.job import Job
from nomadd.structs.job_diff import annotate, job_diff


def _edited(job: Job, **task_kw: Any) -> Job:
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], **task_kw)
    return dataclasses.replace(job, task_groups=(dataclasses.replace(tg, tasks=(task,)),))


def test_identical_jobs_diff_to_none_but_list_their_groups_and_tasks() -> None:
    job = mock_job()
    diff = job_diff(job, dataclasses.replace(job, version=4, job_modify_index=99, stable=True))
    assert diff["Type"] == "None" and diff["Fields"] == [] and diff["Objects"] == []
    groups: Any = diff["TaskGroups"]
    assert [(g["Type"], g["Name"]) for g in groups] == [("None", "web")]
    assert [(t["Type"], t["Name"]) for t in groups[0]["Tasks"]] == [("None", "web")]


def test_new_and_deleted_jobs() -> None:
    job = mock_job()
    added = job_diff(None, job)
    assert added["Type"] == "Added" and added["ID"] == "web"
    fields: Any = added["Fields"]
    assert {"Type": "Added", "Name": "Priority", "Old": "", "New": "50", "Annotations": None} in fields
    assert all(f["Name"] not in ("ID", "Version", "Status") for f in fields)  # Nomad's filter
    assert job_diff(job, None)["Type"] == "Deleted"
    with pytest.raises(ValueError, match="different IDs"):
        job_diff(job, mock_job("other"))


def test_fields_maps_sets_and_objects_use_nomads_names() -> None:
    old = mock_job()
    new = dataclasses.replace(
        old,
        priority=70,
        meta={"team": "ops"},
        datacenters=("dc1", "dc2"),
        constraints=(Constraint(l_target="${attr.kernel.name}", r_target="linux"),),
    )
    diff: Any = job_diff(old, new)
    assert diff["Type"] == "Edited"
    assert [(f["Type"], f["Name"], f["Old"], f["New"]) for f in diff["Fields"]] == [
        ("Added", "Meta[team]", "", "ops"),
        ("Edited", "Priority", "50", "70"),
    ]
    objects = {o["Name"]: o for o in diff["Objects"]}
    assert objects["Datacenters"]["Fields"] == [
        {"Type": "Added", "Name": "Datacenters", "Old": "", "New": "dc2", "Annotations": None}
    ]
    constraint = objects["Constraint"]
    assert constraint["Type"] == "Added"
    assert {f["Name"] for f in constraint["Fields"]} == {"LTarget", "RTarget", "Operand"}


def test_task_changes_are_annotated_destructive_or_in_place() -> None:
    job = mock_job()
    config = _edited(job, config={"command": "/bin/sleep", "args": ["5"]})
    diff: Any = annotate(job_diff(job, config), {"web": {"DestructiveUpdate": 3}})
    task = diff["TaskGroups"][0]["Tasks"][0]
    assert task["Annotations"] == ["forces create/destroy update"]
    assert task["Objects"][0]["Name"] == "Config"
    assert task["Objects"][0]["Fields"][0] | {"Annotations": None} == {
        "Type": "Edited",
        "Name": "args[0]",
        "Old": "1000",
        "New": "5",
        "Annotations": None,
    }
    assert diff["TaskGroups"][0]["Updates"] == {"create/destroy update": 3}

    timeout = _edited(job, kill_timeout=job.task_groups[0].tasks[0].kill_timeout * 2)
    soft: Any = annotate(job_diff(job, timeout), {"web": {"InPlaceUpdate": 3}})
    assert soft["TaskGroups"][0]["Tasks"][0]["Annotations"] == ["forces in-place update"]


def test_count_annotations_and_added_groups() -> None:
    job = mock_job(count=3)
    tg = job.task_groups[0]
    for count, note in ((5, "forces create"), (1, "forces destroy")):
        new = dataclasses.replace(job, task_groups=(dataclasses.replace(tg, count=count),))
        diff: Any = annotate(job_diff(job, new), {})
        assert diff["TaskGroups"][0]["Fields"][0]["Annotations"] == [note]
    extra = dataclasses.replace(tg, name="api")
    grown: Any = annotate(
        job_diff(job, dataclasses.replace(job, task_groups=(tg, extra))), {"api": {"Place": 3}}
    )
    api = grown["TaskGroups"][0]
    assert (api["Name"], api["Type"], api["Updates"]) == ("api", "Added", {"create": 3})
    assert api["Tasks"][0]["Annotations"] == ["forces create"]

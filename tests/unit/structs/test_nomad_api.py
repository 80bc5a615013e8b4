"""A Nomad job field nomadd does not implement is a 400 naming it; zero values and keys Nomad
does not know pass (Nomad's decoder ignores those too)."""

from __future__ import annotations

from typing import Any

import pytest

from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job
from nomadd.structs.nomad_api import check_supported


def _job(**kw: Any) -> dict[str, Any]:
    task = {"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/true"}}
    return {"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [task]}], **kw}


@pytest.mark.parametrize(
    ("job", "where"),
    [
        (_job(Periodic={"Enabled": True, "Spec": "* * * * *"}), None),  # implemented since issue 13
        (_job(Multiregion={"Regions": [{"Name": "r"}]}), "Job.Multiregion"),
        (_job(Affinities=[{"LTarget": "${node.class}", "RTarget": "x", "Operand": "="}]), "Job.Affinities"),
        (
            {
                "ID": "x",
                "TaskGroups": [{"Name": "g", "Services": [{"Name": "web", "Connect": {"Native": True}}]}],
            },
            "Job.TaskGroups[0].Services[0].Connect",
        ),
        (
            {
                "ID": "x",
                "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Vault": {"Policies": ["p"]}}]}],
            },
            "Job.TaskGroups[0].Tasks[0].Vault",
        ),
        (
            {
                "ID": "x",
                "TaskGroups": [
                    {"Name": "g", "Tasks": [{"Name": "t", "Resources": {"Devices": [{"Name": "gpu"}]}}]}
                ],
            },
            "Job.TaskGroups[0].Tasks[0].Resources.Devices",
        ),
        (
            {"ID": "x", "TaskGroups": [{"Name": "g", "Networks": [{"DynamicPorts": [{"Label": "h"}]}]}]},
            None,
        ),
        (_job(Update={"MaxParallel": 1, "Stagger": 1}), None),
        (
            {
                "ID": "x",
                "TaskGroups": [{"Name": "g", "Services": [{"Name": "web", "Checks": [{"Type": "tcp"}]}]}],
            },
            None,
        ),
        (
            {"ID": "x", "TaskGroups": [{"Name": "g", "Services": [{"Checks": [{"Command": "/bin/check"}]}]}]},
            "Job.TaskGroups[0].Services[0].Checks[0].Command",
        ),
    ],
)
def test_a_set_unimplemented_field_is_refused_by_path(job: dict[str, Any], where: str | None) -> None:
    if where is None:
        check_supported(Job, job, "Job")
        return
    with pytest.raises(ValidationError, match="not supported by nomadd") as err:
        check_supported(Job, job, "Job")
    assert str(err.value).startswith(where + ":")


def test_zero_values_and_unknown_keys_pass() -> None:
    job = _job(
        Periodic=None,
        Multiregion={"Strategy": None, "Regions": []},
        Spreads=[],
        Dispatched=False,
        ConsulNamespace="",
        SomethingNomadLacks={"a": 1},
    )
    job["TaskGroups"][0]["Consul"] = {"Namespace": "", "Cluster": ""}
    job["TaskGroups"][0]["Tasks"][0]["Resources"] = {"CPU": 100, "IOPS": 5, "Networks": None}
    job["TaskGroups"][0]["Tasks"][0]["LogConfig"] = {"MaxFiles": 2, "Enabled": True}
    check_supported(Job, job, "Job")

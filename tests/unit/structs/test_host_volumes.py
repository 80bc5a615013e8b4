"""Host volumes: client config, job parsing and validation, feasibility, mount resolution."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nomadd.agent.config_schema import check_file, merge
from nomadd.client.alloc_runner import task_mounts
from nomadd.drivers.base import Mount
from nomadd.helper.jobspec import parse_job_text
from nomadd.scheduler.feasible import FILTER_HOST_VOLUMES, GroupChecker
from nomadd.scheduler.testing import Harness, mock_job, mock_node
from nomadd.structs.codec import from_api, to_api
from nomadd.structs.errors import ConfigError, DriverError, ValidationError
from nomadd.structs.job import Job, TaskGroup
from nomadd.structs.node import computed_class
from nomadd.structs.nomad_api import check_supported
from nomadd.structs.volumes import ClientHostVolumeConfig, VolumeMount, VolumeRequest

HCL = """
job "v" {
  datacenters = ["dc1"]
  group "g" {
    volume "data" {
      type      = "host"
      source    = "shared"
      read_only = true
    }
    task "t" {
      driver = "exec"
      config { command = "/bin/cat" }
      volume_mount {
        volume      = "data"
        destination = "/srv/data"
      }
    }
  }
}
"""


def with_volumes(job: Job, volumes: dict[str, VolumeRequest], mounts: tuple[VolumeMount, ...] = ()) -> Job:
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], volume_mounts=mounts)
    return dataclasses.replace(job, task_groups=(dataclasses.replace(tg, volumes=volumes, tasks=(task,)),))


def host(source: str, read_only: bool = False, name: str = "data") -> dict[str, VolumeRequest]:
    return {name: VolumeRequest(name=name, type="host", source=source, read_only=read_only)}


# ---- client config ------------------------------------------------------------------------
def test_config_host_volume(tmp_path: Path) -> None:
    part = check_file(
        {"client": {"host_volume": {"d": {"path": str(tmp_path), "read_only": True}}}}, "a.toml"
    )
    assert part["client"]["host_volume"] == {"d": {"path": str(tmp_path), "read_only": True}}
    other = check_file({"client": {"host_volume": {"e": {"path": "/"}}}}, "b.toml")
    merged = merge(part, other)
    assert set(merged["client"]["host_volume"]) == {"d", "e"}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"path": "/nonexistent/x"}, "d.path: '/nonexistent/x' does not exist"),
        ({"path": "relative"}, "d.path: expected an absolute path"),
        ({}, "d.path: expected an absolute path"),
        ({"path": "/", "read_only": "yes"}, "d.read_only: expected a boolean"),
        ({"path": "/", "mode": 1}, "d: unknown key 'mode'"),
        ("x", "d: expected a table"),
    ],
)
def test_config_host_volume_errors_name_file_and_key(body: object, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_file({"client": {"host_volume": {"d": body}}}, "agent.toml")
    assert str(err.value).startswith("agent.toml: client.host_volume: ")
    assert why in str(err.value)


# ---- jobs ---------------------------------------------------------------------------------
def test_hcl_and_api_round_trip() -> None:
    data = parse_job_text(HCL, "v.hcl")
    check_supported(Job, data, "Job")
    job = from_api(Job, data).canonicalize()
    job.validate()
    tg = job.task_groups[0]
    assert tg.volumes == host("shared", read_only=True)
    assert tg.tasks[0].volume_mounts == (VolumeMount(volume="data", destination="/srv/data"),)
    api = to_api(job)
    assert api["TaskGroups"][0]["Volumes"]["data"]["Source"] == "shared"
    assert api["TaskGroups"][0]["Tasks"][0]["VolumeMounts"][0]["Destination"] == "/srv/data"


def test_csi_only_fields_are_refused() -> None:
    data = parse_job_text(HCL, "v.hcl")
    data["TaskGroups"][0]["Volumes"]["data"]["PerAlloc"] = True
    with pytest.raises(ValidationError, match=r"Volumes\['data'\]\.PerAlloc: not supported"):
        check_supported(Job, data, "Job")


@pytest.mark.parametrize(
    ("volumes", "mounts", "why"),
    [
        (
            {},
            (VolumeMount(volume="data", destination="/d"),),
            "volume 'data' is not requested by the task group",
        ),
        (host("s"), (VolumeMount(volume="data", destination=""),), "Destination: missing"),
        (host("s"), (VolumeMount(volume="data", destination="/a/../b"),), "may not contain '..'"),
        ({"data": VolumeRequest(name="data", type="csi", source="s")}, (), "only host volumes are supported"),
        ({"data": VolumeRequest(name="data", type="host")}, (), "needs a source"),
        ({"": VolumeRequest(type="host", source="s")}, (), "needs a name"),
    ],
)
def test_validation(volumes: dict[str, VolumeRequest], mounts: tuple[VolumeMount, ...], why: str) -> None:
    job = with_volumes(mock_job(), volumes, mounts)
    with pytest.raises(ValidationError, match=why):
        job.validate()


# ---- feasibility --------------------------------------------------------------------------
def test_checker_needs_the_source_and_a_compatible_mode() -> None:
    job = with_volumes(mock_job(), host("shared"))
    checker = GroupChecker(job, job.task_groups[0])
    rw = ClientHostVolumeConfig(name="shared", path="/srv")
    ro = dataclasses.replace(rw, read_only=True)
    assert not checker.feasible(mock_node("a"))
    assert checker.constraint_filtered == {FILTER_HOST_VOLUMES: 1}
    assert checker.feasible(mock_node("b", host_volumes={"shared": rw}).with_computed_class())
    # a read-only host volume only serves read-only requests (Nomad)
    assert not checker.feasible(mock_node("c", host_volumes={"shared": ro}).with_computed_class())
    ro_job = with_volumes(mock_job(), host("shared", read_only=True))
    assert GroupChecker(ro_job, ro_job.task_groups[0]).feasible(mock_node("d", host_volumes={"shared": ro}))


def test_host_volumes_are_part_of_the_computed_class() -> None:
    vol = ClientHostVolumeConfig(name="shared", path="/srv")
    plain, with_vol = mock_node("a"), mock_node("a", host_volumes={"shared": vol})
    assert computed_class(plain) != computed_class(with_vol)
    ro = mock_node("a", host_volumes={"shared": dataclasses.replace(vol, read_only=True)})
    assert computed_class(ro) != computed_class(with_vol)


def test_job_without_a_node_with_the_volume_stays_pending_with_the_reason() -> None:
    h = Harness()
    h.add_node()
    has = h.add_node(host_volumes={"shared": ClientHostVolumeConfig(name="shared", path="/srv")}).id
    ev = h.run(with_volumes(mock_job(count=1), host("nowhere")))
    assert h.live_allocs("web") == []
    assert ev.failed_tg_allocs["web"].constraint_filtered == {FILTER_HOST_VOLUMES: 2}
    h.run(with_volumes(mock_job("ok", count=2, cpu=100), host("shared")))
    assert {a.node_id for a in h.live_allocs("ok")} == {has}


# ---- client: mounts -----------------------------------------------------------------------
def _group(volumes: dict[str, VolumeRequest], mount: VolumeMount) -> TaskGroup:
    return with_volumes(mock_job(), volumes, (mount,)).task_groups[0]


@pytest.mark.parametrize(
    ("vol_ro", "req_ro", "mount_ro"),
    [(False, False, False), (True, True, False), (False, True, False), (False, False, True)],
)
def test_mount_is_read_only_when_any_says_so(vol_ro: bool, req_ro: bool, mount_ro: bool) -> None:
    tg = _group(host("shared", req_ro), VolumeMount(volume="data", destination="/d", read_only=mount_ro))
    vols = {"shared": ClientHostVolumeConfig(name="shared", path="/srv", read_only=vol_ro)}
    (m,) = task_mounts(tg.tasks[0], tg, vols)
    assert m == Mount(host_path="/srv", task_path="/d", read_only=vol_ro or req_ro or mount_ro)


def test_mount_of_a_volume_the_client_lacks_is_a_driver_error() -> None:
    tg = _group(host("shared"), VolumeMount(volume="data", destination="/d"))
    with pytest.raises(DriverError, match="this client has no host volume 'shared'"):
        task_mounts(tg.tasks[0], tg, {})
    with pytest.raises(DriverError, match="requests no such volume"):
        task_mounts(tg.tasks[0], dataclasses.replace(tg, volumes={}), {})

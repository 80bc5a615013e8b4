"""Service blocks: Nomad's defaults (name, provider, check method), validation naming the path,
the Consul warning, and the HCL form."""

from __future__ import annotations

from typing import Any

import pytest

from nomadd.helper.jobspec import parse_hcl
from nomadd.structs.codec import from_api, to_api
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job
from nomadd.structs.nomad_api import check_supported
from nomadd.structs.services import CONSUL_WARNING, service_warnings
from tests.api_shapes import decode


def _job(group_services: list[dict[str, Any]], task_services: list[dict[str, Any]] | None = None) -> Job:
    task = {
        "Name": "web",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/true"},
        "Services": task_services or [],
    }
    group = {
        "Name": "front",
        "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
        "Services": group_services,
        "Tasks": [task],
    }
    raw = {"ID": "shop", "Datacenters": ["dc1"], "TaskGroups": [group]}
    return from_api(Job, raw, path="Job").canonicalize()


_TCP = {"Type": "tcp", "Interval": 10**9, "Timeout": 10**9}


def test_defaults_name_provider_and_interpolation() -> None:
    job = _job(
        [{"PortLabel": "http"}, {"Name": "${NOMAD_JOB_NAME}-${TASKGROUP}-api", "Provider": "nomad"}],
        [{"PortLabel": "http", "Checks": [{**_TCP, "Type": "http", "Path": "/health"}]}],
    )
    job.validate({"raw_exec"})
    tg = job.task_groups[0]
    assert [s.name for s in tg.services] == ["shop-front", "shop-front-api"]
    assert [s.provider for s in tg.services] == ["consul", "nomad"]
    task_svc = tg.tasks[0].services[0]
    assert task_svc.name == "shop-front-web" and task_svc.task_name == "web"
    check = task_svc.checks[0]
    assert (check.method, check.protocol) == ("GET", "http")
    assert check.name
    assert [s.name for s in tg.all_services()] == ["shop-front", "shop-front-api", "shop-front-web"]


@pytest.mark.parametrize(
    ("service", "where"),
    [
        ({"PortLabel": "nope"}, "Job.TaskGroups[0].Services[0].PortLabel"),
        ({"Name": "bad name"}, "Job.TaskGroups[0].Services[0].Name"),
        ({"Name": "-x"}, "Job.TaskGroups[0].Services[0].Name"),
        ({"Provider": "etcd"}, "Job.TaskGroups[0].Services[0].Provider"),
        ({"AddressMode": "driver"}, "Job.TaskGroups[0].Services[0].AddressMode"),
        ({"PortLabel": "http", "Checks": [{**_TCP, "Type": "script"}]}, "Services[0].Checks[0].Type"),
        ({"PortLabel": "http", "Checks": [{**_TCP, "Interval": 10}]}, "Services[0].Checks[0].Interval"),
        ({"PortLabel": "http", "Checks": [{**_TCP, "Timeout": 0}]}, "Services[0].Checks[0].Timeout"),
        ({"PortLabel": "http", "Checks": [{**_TCP, "Type": "http"}]}, "Services[0].Checks[0].Path"),
        ({"Checks": [_TCP]}, "Services[0].Checks[0].PortLabel"),
        ({"Checks": [{**_TCP, "PortLabel": "x"}]}, "Services[0].Checks[0].PortLabel"),
    ],
)
def test_bad_services_are_refused_by_path(service: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as err:
        _job([service]).validate({"raw_exec"})
    assert where in str(err.value)


def test_task_service_port_label_checked_too() -> None:
    with pytest.raises(ValidationError, match=r"Tasks\[0\]\.Services\[0\]\.PortLabel"):
        _job([], [{"PortLabel": "db"}]).validate({"raw_exec"})


def test_consul_services_warn_nomad_ones_do_not() -> None:
    job = _job([{"PortLabel": "http"}])
    assert service_warnings(job.task_groups[0].all_services()) == [CONSUL_WARNING]
    job = _job([{"PortLabel": "http", "Provider": "nomad"}])
    assert service_warnings(job.task_groups[0].all_services()) == []


def test_hcl_service_blocks() -> None:
    doc = parse_hcl(
        """
job "shop" {
  datacenters = ["dc1"]
  group "front" {
    network {
      port "http" {}
    }
    service {
      name     = "front"
      port     = "http"
      provider = "nomad"
      tags     = ["a", "b"]
      check {
        type     = "http"
        path     = "/health"
        interval = "5s"
        timeout  = "2s"
      }
    }
    task "web" {
      driver = "raw_exec"
      config {
        command = "/bin/true"
      }
      service {
        port = "http"
      }
    }
  }
}
"""
    )
    job = from_api(Job, doc, path="Job").canonicalize()
    job.validate({"raw_exec"})
    svc = job.task_groups[0].services[0]
    assert (svc.name, svc.port_label, svc.provider, svc.tags) == ("front", "http", "nomad", ("a", "b"))
    assert (svc.checks[0].interval, svc.checks[0].timeout) == (5 * 10**9, 2 * 10**9)
    assert job.task_groups[0].tasks[0].services[0].name == "shop-front-web"


def test_api_json_has_nomads_shape() -> None:
    """Every key Nomad's api.Service / api.ServiceCheck always sends is there, with its Go type,
    so a job read back from nomadd decodes in Nomad's clients and can be submitted again."""
    job = _job([{"PortLabel": "http", "Checks": [_TCP]}], [{"PortLabel": "http"}])
    raw = to_api(job)
    assert decode(raw, "Job") == []
    check_supported(Job, raw, "Job")

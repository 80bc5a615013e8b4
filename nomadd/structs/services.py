"""Service blocks of task groups and tasks (Nomad's ``service`` and ``check``), and the service
registrations nomadd keeps in its own catalog (Nomad's native service discovery).

nomadd has no Consul integration: a service of either provider (``consul``, Nomad's default, or
``nomad``) is registered in nomadd's catalog; :func:`service_warnings` says so in the register
reply (docs/services.md).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from dataclasses import field
from typing import ClassVar

from nomadd.structs.timeutil import NS_PER_S

__all__ = [
    "CHECK_TYPES",
    "PROVIDERS",
    "Service",
    "ServiceCheck",
    "ServiceRegistration",
    "canonical_services",
    "service_problems",
    "service_warnings",
]

PROVIDERS = ("consul", "nomad")
CHECK_TYPES = ("tcp", "http")  # what Nomad's native provider runs
_ADDRESS_MODES = ("", "auto", "host")
MIN_CHECK_INTERVAL_NS = NS_PER_S  # Nomad's minCheckInterval
MIN_CHECK_TIMEOUT_NS = NS_PER_S  # Nomad's minCheckTimeout
# Nomad's validServiceName: RFC 1123 labels, 63 characters at most
_SERVICE_NAME = re.compile(r"^(?i:[a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])$")
CONSUL_WARNING = (
    'nomadd has no Consul integration: the services with provider "consul" are registered in '
    'nomadd\'s own service catalog (provider "nomad")'
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceCheck:
    # Nomad's api.ServiceCheck keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "Command": "",
        "Args": None,
        "Expose": False,
        "AddressMode": "",
        "Notes": "",
        "TLSServerName": "",
        "Header": None,
        "CheckRestart": None,
        "GRPCService": "",
        "GRPCUseTLS": False,
        "TaskName": "",
        "SuccessBeforePassing": 0,
        "FailuresBeforeCritical": 0,
        "FailuresBeforeWarning": 0,
        "Body": "",
        "OnUpdate": "",
    }

    name: str = ""
    type: str = ""
    path: str = ""
    method: str = ""  # http: GET when empty
    protocol: str = ""  # http: http when empty
    port_label: str = ""  # empty: the service's port
    interval: int = 0  # ns
    timeout: int = 0  # ns
    initial_status: str = ""
    tls_skip_verify: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    # Nomad's api.Service keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "EnableTagOverride": False,
        "CheckRestart": None,
        "Connect": None,
        "CanaryMeta": None,
        "TaggedAddresses": None,
        "OnUpdate": "",
        "Identity": None,
        "Weights": None,
        "Cluster": "",
        "Kind": "",
    }

    name: str = ""
    port_label: str = ""
    tags: tuple[str, ...] = ()
    canary_tags: tuple[str, ...] = ()
    provider: str = ""  # canonical: "consul" when empty, as Nomad
    address: str = ""
    address_mode: str = ""
    task_name: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)
    checks: tuple[ServiceCheck, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRegistration:
    """One running instance of a service (Nomad's structs.ServiceRegistration)."""

    id: str = ""
    service_name: str = ""
    namespace: str = ""
    node_id: str = ""
    datacenter: str = ""
    job_id: str = ""
    alloc_id: str = ""
    tags: tuple[str, ...] = ()
    address: str = ""
    port: int = 0
    create_index: int = 0
    modify_index: int = 0


def _interpolate(text: str, job: str, group: str, task: str) -> str:
    for key, value in (
        ("${NOMAD_JOB_NAME}", job),
        ("${JOB}", job),
        ("${NOMAD_GROUP_NAME}", group),
        ("${TASKGROUP}", group),
        ("${NOMAD_TASK_NAME}", task),
        ("${TASK}", task),
        ("${BASE}", f"{job}-{group}-{task}" if task else f"{job}-{group}"),
    ):
        text = text.replace(key, value)
    return text


def canonical_services(
    services: tuple[Service, ...], job: str, group: str, task: str = ""
) -> tuple[Service, ...]:
    """Nomad's Service.Canonicalize: default name ``<job>-<group>[-<task>]``, job/group/task
    names interpolated, provider ``consul`` when empty, check defaults."""
    out = []
    for svc in services:
        name = svc.name or "${BASE}"
        checks = tuple(
            dataclasses.replace(
                c,
                name=c.name or f"service: {_interpolate(name, job, group, task)!r} check",
                method=(c.method or "GET") if c.type == "http" else c.method,
                protocol=(c.protocol or "http") if c.type == "http" else c.protocol,
            )
            for c in svc.checks
        )
        out.append(
            dataclasses.replace(
                svc,
                name=_interpolate(name, job, group, task),
                provider=svc.provider or "consul",
                task_name=svc.task_name or task,
                checks=checks,
            )
        )
    return tuple(out)


def service_problems(path: str, services: tuple[Service, ...], port_labels: Collection[str]) -> list[str]:
    """Problems of one canonical ``Services`` list; ``port_labels``: the group's port labels."""
    errs: list[str] = []
    for i, svc in enumerate(services):
        p = f"{path}[{i}]"
        if not _SERVICE_NAME.match(svc.name):
            errs.append(
                f"{p}.Name: service name {svc.name!r} must be letters, digits and dashes "
                "(at most 63, not starting or ending with a dash)"
            )
        if svc.provider not in PROVIDERS:
            errs.append(f"{p}.Provider: must be one of {', '.join(PROVIDERS)}; got {svc.provider!r}")
        if svc.address_mode not in _ADDRESS_MODES:
            errs.append(f"{p}.AddressMode: nomadd supports auto and host; got {svc.address_mode!r}")
        if svc.port_label and not svc.port_label.isdigit() and svc.port_label not in port_labels:
            errs.append(f"{p}.PortLabel: port label {svc.port_label!r} is not in the group's network")
        for j, check in enumerate(svc.checks):
            errs.extend(_check_problems(f"{p}.Checks[{j}]", check, svc, port_labels))
    return errs


def _check_problems(path: str, check: ServiceCheck, svc: Service, labels: Collection[str]) -> list[str]:
    errs: list[str] = []
    if check.type not in CHECK_TYPES:
        errs.append(f"{path}.Type: nomadd runs tcp and http checks; got {check.type!r}")
    if check.interval < MIN_CHECK_INTERVAL_NS:
        errs.append(f"{path}.Interval: must be at least 1s; got {check.interval}ns")
    if check.timeout < MIN_CHECK_TIMEOUT_NS:
        errs.append(f"{path}.Timeout: must be at least 1s; got {check.timeout}ns")
    if check.type == "http":
        if not check.path.startswith("/"):
            errs.append(f"{path}.Path: an http check needs an absolute path; got {check.path!r}")
        if check.protocol not in ("http", "https"):
            errs.append(f"{path}.Protocol: must be http or https; got {check.protocol!r}")
    if check.initial_status not in ("", "passing", "warning", "critical"):
        errs.append(f"{path}.InitialStatus: invalid {check.initial_status!r}")
    label = check.port_label or svc.port_label
    if not label:
        errs.append(f"{path}.PortLabel: a {check.type} check needs a port (its own or the service's)")
    elif not label.isdigit() and label not in labels:
        errs.append(f"{path}.PortLabel: port label {label!r} is not in the group's network")
    return errs


def service_warnings(services: Collection[Service]) -> list[str]:
    """The register reply's warning when a service asks for Consul, which nomadd does not have."""
    return [CONSUL_WARNING] if any(s.provider == "consul" for s in services) else []

"""The job fields Nomad's API has, so one nomadd does not implement is refused, not dropped.

Nomad's Go decoder ignores keys it does not know, and so does :func:`~nomadd.structs.codec.from_api`.
But a key Nomad *does* know — ``Periodic``, ``Services``, ``Vault``, ``Affinities``… — carries
meaning the user asked for; silently dropping it would run a different job than the one
submitted. :func:`check_supported` walks a job's API JSON against :data:`NOMAD_FIELDS` (the
fields of Nomad's Go ``api.Job``, ``api.TaskGroup``, ``api.Task`` and their parts) and refuses,
with a 400 naming the path, any such field that nomadd's struct lacks and the job sets to
something other than its zero value (``null``, ``""``, ``0``, ``false``, ``[]``, ``{}`` or an
object of zeros: what Nomad's own CLI and clients send for the parts a job leaves out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from nomadd.structs.codec import API_NAME_KEY, api_name
from nomadd.structs.constraint import Constraint
from nomadd.structs.disconnect import DisconnectStrategy
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job, LogConfig, Task, TaskGroup
from nomadd.structs.lifecycle import TaskLifecycle
from nomadd.structs.migrate import MigrateStrategy
from nomadd.structs.periodic import DispatchPayloadConfig, ParameterizedJobConfig, PeriodicConfig
from nomadd.structs.policy import ReschedulePolicy, RestartPolicy, UpdateStrategy
from nomadd.structs.resources import EphemeralDisk, NetworkResource, Port, Resources
from nomadd.structs.services import Service, ServiceCheck
from nomadd.structs.volumes import VolumeMount, VolumeRequest

__all__ = ["NOMAD_FIELDS", "check_supported"]


def _f(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Each struct: the fields of its Nomad api counterpart, and the nested structs to walk into.
NOMAD_FIELDS: dict[type, tuple[frozenset[str], Mapping[str, type]]] = {
    Job: (
        _f(
            "Region Namespace ID Name Type Priority AllAtOnce Datacenters NodePool Constraints "
            "Affinities TaskGroups Update Multiregion Spreads Periodic ParameterizedJob Reschedule "
            "Migrate Meta UI Stop ParentID Dispatched DispatchIdempotencyToken Payload ConsulNamespace "
            "VaultNamespace NomadTokenID Status StatusDescription Stable Version SubmitTime CreateIndex "
            "ModifyIndex JobModifyIndex VersionTag"
        ),
        {
            "TaskGroups": TaskGroup,
            "Constraints": Constraint,
            "Update": UpdateStrategy,
            "Migrate": MigrateStrategy,
            "Periodic": PeriodicConfig,
            "ParameterizedJob": ParameterizedJobConfig,
        },
    ),
    TaskGroup: (
        _f(
            "Name Count Constraints Affinities Tasks Spreads Volumes RestartPolicy Disconnect "
            "ReschedulePolicy EphemeralDisk Update Migrate Networks Meta Services ShutdownDelay "
            "MaxRunDuration StopAfterClientDisconnect MaxClientDisconnect Scaling Consul "
            "PreventRescheduleOnLost"
        ),
        {
            "Tasks": Task,
            "Constraints": Constraint,
            "RestartPolicy": RestartPolicy,
            "ReschedulePolicy": ReschedulePolicy,
            "EphemeralDisk": EphemeralDisk,
            "Update": UpdateStrategy,
            "Migrate": MigrateStrategy,
            "Disconnect": DisconnectStrategy,
            "Networks": NetworkResource,
            "Services": Service,
        },
    ),
    Task: (
        _f(
            "Name Driver User Lifecycle Config Constraints Affinities Env Services Resources "
            "RestartPolicy Meta KillTimeout LogConfig Artifacts Vault Consul Templates DispatchPayload "
            "VolumeMounts CSIPluginConfig Leader ShutdownDelay KillSignal Kind ScalingPolicies Secrets "
            "Identity Identities Actions Schedule"
        ),
        {
            "Constraints": Constraint,
            "Resources": Resources,
            "RestartPolicy": RestartPolicy,
            "LogConfig": LogConfig,
            "Lifecycle": TaskLifecycle,
            "VolumeMounts": VolumeMount,
            "DispatchPayload": DispatchPayloadConfig,
            "Services": Service,
        },
    ),
    Service: (
        _f(
            "Name Tags CanaryTags EnableTagOverride PortLabel AddressMode Address Checks CheckRestart "
            "Connect Meta CanaryMeta TaggedAddresses TaskName OnUpdate Identity Provider Cluster Weights Kind"
        ),
        {"Checks": ServiceCheck},
    ),
    ServiceCheck: (
        _f(
            "Name Type Command Args Path Protocol PortLabel Expose AddressMode Advertise Interval "
            "Timeout InitialStatus Notes TLSServerName TLSSkipVerify Header Method CheckRestart "
            "GRPCService GRPCUseTLS TaskName SuccessBeforePassing FailuresBeforeCritical "
            "FailuresBeforeWarning Body OnUpdate"
        ),
        {},
    ),
    TaskLifecycle: (_f("Hook Sidecar"), {}),
    VolumeMount: (_f("Volume Destination ReadOnly PropagationMode SELinuxLabel"), {}),
    # LogConfig.Enabled and Resources.IOPS: Nomad itself ignores them (deprecated).
    LogConfig: (_f("MaxFiles MaxFileSizeMB Disabled"), {}),
    Resources: (
        _f("CPU Cores MemoryMB MemoryMaxMB DiskMB Networks Devices NUMA SecretsMB"),
        {"Networks": NetworkResource},
    ),
    NetworkResource: (
        _f("Mode Device CIDR IP DNS ReservedPorts DynamicPorts Hostname MBits"),
        {"ReservedPorts": Port, "DynamicPorts": Port},
    ),
    Port: (_f("Label Value To HostNetwork"), {}),
    RestartPolicy: (_f("Interval Attempts Delay Mode RenderTemplates"), {}),
    ReschedulePolicy: (_f("Attempts Interval Delay DelayFunction MaxDelay Unlimited"), {}),
    UpdateStrategy: (
        _f(
            "Stagger MaxParallel HealthCheck MinHealthyTime HealthyDeadline ProgressDeadline Canary "
            "AutoRevert AutoPromote"
        ),
        {},
    ),
    MigrateStrategy: (_f("MaxParallel HealthCheck MinHealthyTime HealthyDeadline"), {}),
    DisconnectStrategy: (_f("LostAfter Replace Reconcile StopOnClientAfter"), {}),
    EphemeralDisk: (_f("Sticky Migrate SizeMB"), {}),
    VolumeRequest: (
        _f("Name Type Source ReadOnly Sticky AccessMode AttachmentMode MountOptions PerAlloc"),
        {},
    ),
    Constraint: (_f("LTarget RTarget Operand"), {}),
    PeriodicConfig: (_f("Enabled Spec Specs SpecType ProhibitOverlap TimeZone"), {}),
    ParameterizedJobConfig: (_f("Payload MetaRequired MetaOptional"), {}),
    DispatchPayloadConfig: (_f("File"), {}),
}

_unsupported_cache: dict[type, frozenset[str]] = {}


def _unsupported(cls: type) -> frozenset[str]:
    out = _unsupported_cache.get(cls)
    if out is None:
        ours = {f.metadata.get(API_NAME_KEY) or api_name(f.name) for f in dataclasses.fields(cls)}
        out = _unsupported_cache[cls] = NOMAD_FIELDS[cls][0] - ours
    return out


def _zero(value: object) -> bool:
    if value is None or value == "" or value is False or value == 0 or value == []:
        return True
    return isinstance(value, Mapping) and all(_zero(v) for v in value.values())


def check_supported(cls: type, data: object, path: str) -> None:
    """Raise a 400 naming the first Nomad field in ``data`` (API JSON of ``cls``) that nomadd
    does not implement and that is set."""
    if not isinstance(data, Mapping):
        return  # from_api reports a wrong type with its path
    unsupported = _unsupported(cls)
    nested = NOMAD_FIELDS[cls][1]
    for key, value in data.items():
        if key in unsupported and not _zero(value):
            raise ValidationError(f"{path}.{key}: not supported by nomadd (Nomad's {cls.__name__}.{key})")
        if cls is TaskGroup and key == "Volumes" and isinstance(value, Mapping):  # name -> request
            for name, req in value.items():
                check_supported(VolumeRequest, req, f"{path}.{key}[{name!r}]")
            continue
        inner = nested.get(key)
        if inner is None:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                check_supported(inner, item, f"{path}.{key}[{i}]")
        else:
            check_supported(inner, value, f"{path}.{key}")

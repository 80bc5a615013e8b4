"""The keys of Nomad's API JSON job that a job FILE may set (the strict check of
:mod:`nomadd.helper.jobspec`); ``tests/unit/cli/test_job_file.py`` checks it against the structs."""

from __future__ import annotations

from typing import Any

__all__ = ["JOB_SCHEMA"]

_ANY = None  # free-form value (scalars, lists of scalars, Meta/Env/Config maps)
_CONSTRAINT = {"LTarget": _ANY, "RTarget": _ANY, "Operand": _ANY}
_RESTART = {"Attempts": _ANY, "Interval": _ANY, "Delay": _ANY, "Mode": _ANY, "RenderTemplates": _ANY}
_RESCHEDULE = {
    "Attempts": _ANY,
    "Interval": _ANY,
    "Delay": _ANY,
    "DelayFunction": _ANY,
    "MaxDelay": _ANY,
    "Unlimited": _ANY,
}
_UPDATE = {
    k: _ANY
    for k in (
        "Stagger",
        "MaxParallel",
        "HealthCheck",
        "MinHealthyTime",
        "HealthyDeadline",
        "ProgressDeadline",
        "AutoRevert",
        "AutoPromote",
        "Canary",
    )
}
_MIGRATE = {k: _ANY for k in ("MaxParallel", "HealthCheck", "MinHealthyTime", "HealthyDeadline")}
_PORT = {"Label": _ANY, "Value": _ANY, "To": _ANY, "HostNetwork": _ANY, "IgnoreCollision": _ANY}
_NETWORK = {
    **{k: _ANY for k in ("Mode", "Device", "CIDR", "IP", "Hostname", "MBits", "DNS", "CNI")},
    "ReservedPorts": [_PORT],
    "DynamicPorts": [_PORT],
}
_CHECK = {
    k: _ANY
    for k in (
        "Name",
        "Type",
        "Path",
        "Method",
        "Protocol",
        "PortLabel",
        "Interval",
        "Timeout",
        "InitialStatus",
        "TLSSkipVerify",
    )
}
_SERVICE = {
    **{
        k: _ANY
        for k in (
            "Name",
            "PortLabel",
            "Tags",
            "CanaryTags",
            "Provider",
            "Address",
            "AddressMode",
            "TaskName",
            "Meta",
        )
    },
    "Checks": [_CHECK],
}
_TASK = {
    "Name": _ANY,
    "Driver": _ANY,
    "User": _ANY,
    "Config": _ANY,
    "Env": _ANY,
    "Constraints": [_CONSTRAINT],
    "Resources": {
        "CPU": _ANY,
        "Cores": _ANY,
        "MemoryMB": _ANY,
        "MemoryMaxMB": _ANY,
        "DiskMB": _ANY,
        "Networks": [_NETWORK],
    },
    "RestartPolicy": _RESTART,
    "Meta": _ANY,
    "KillTimeout": _ANY,
    "KillSignal": _ANY,
    "LogConfig": {"MaxFiles": _ANY, "MaxFileSizeMB": _ANY, "Disabled": _ANY},
    "Leader": _ANY,
    "Lifecycle": {"Hook": _ANY, "Sidecar": _ANY},
    "VolumeMounts": [{k: _ANY for k in ("Volume", "Destination", "ReadOnly", "PropagationMode")}],
    "DispatchPayload": {"File": _ANY},
    "Services": [_SERVICE],
}
_GROUP = {
    "Name": _ANY,
    "Count": _ANY,
    "Constraints": [_CONSTRAINT],
    "Tasks": [_TASK],
    "RestartPolicy": _RESTART,
    "ReschedulePolicy": _RESCHEDULE,
    "Update": _UPDATE,
    "Migrate": _MIGRATE,
    "Disconnect": {k: _ANY for k in ("LostAfter", "Replace", "Reconcile", "StopOnClientAfter")},
    "MaxClientDisconnect": _ANY,
    "EphemeralDisk": {"SizeMB": _ANY, "Sticky": _ANY, "Migrate": _ANY},
    "Meta": _ANY,
    "Networks": [_NETWORK],
    "Services": [_SERVICE],
    "Volumes": _ANY,  # name -> request; the API's decoder checks the requests
    "Scaling": {
        k: _ANY
        for k in ("ID", "Type", "Min", "Max", "Enabled", "Policy", "Target", "CreateIndex", "ModifyIndex")
    },
}
JOB_SCHEMA: dict[str, Any] = {
    **{
        k: _ANY
        for k in (
            "ID",
            "ParentID",
            "Name",
            "Namespace",
            "Region",
            "Type",
            "Priority",
            "AllAtOnce",
            "Datacenters",
            "NodePool",
            "Meta",
            "Stop",
            "Status",
            "StatusDescription",
            "Stable",
            "Version",
            "SubmitTime",
            "CreateIndex",
            "ModifyIndex",
            "JobModifyIndex",
            "Dispatched",
            "DispatchIdempotencyToken",
            "Payload",
        )
    },
    "Periodic": {k: _ANY for k in ("Enabled", "Spec", "Specs", "SpecType", "ProhibitOverlap", "TimeZone")},
    "ParameterizedJob": {"Payload": _ANY, "MetaRequired": _ANY, "MetaOptional": _ANY},
    "Constraints": [_CONSTRAINT],
    "TaskGroups": [_GROUP],
    "Update": _UPDATE,
    "Migrate": _MIGRATE,
}

"""Host volumes (Nomad's static host volumes): what a client offers, what a group asks for and
where a task mounts it.

* a client's ``host_volume "name" { path, read_only }`` → ``Node.HostVolumes[name]``
  (:class:`ClientHostVolumeConfig`);
* a group's ``volume "x" { type = "host", source = "name", read_only }`` (:class:`VolumeRequest`,
  ``TaskGroup.Volumes`` keyed by the request's name);
* a task's ``volume_mount { volume = "x", destination, read_only }`` (:class:`VolumeMount`).

A node is feasible for a group when it has every requested source, and a read-only host volume
is only given to read-only requests (Nomad's HostVolumeChecker). Only ``type = "host"`` is
supported (no CSI, no dynamic host volumes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

__all__ = [
    "HOST_VOLUME_TYPE",
    "ClientHostVolumeConfig",
    "VolumeMount",
    "VolumeRequest",
    "mount_problems",
    "mount_read_only",
    "node_has_volumes",
    "volume_problems",
]

HOST_VOLUME_TYPE = "host"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientHostVolumeConfig:
    """One host volume a client offers (Nomad's structs.ClientHostVolumeConfig)."""

    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {"ID": ""}

    name: str = ""
    path: str = ""
    read_only: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VolumeRequest:
    """A group's ``volume`` block (Nomad's api.VolumeRequest)."""

    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "Sticky": False,
        "AccessMode": "",
        "AttachmentMode": "",
        "MountOptions": None,
        "PerAlloc": False,
    }

    name: str = ""
    type: str = ""
    source: str = ""
    read_only: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VolumeMount:
    """A task's ``volume_mount`` block (Nomad's api.VolumeMount)."""

    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {"SELinuxLabel": ""}

    volume: str = ""
    destination: str = ""
    read_only: bool = False
    propagation_mode: str = "private"


def volume_problems(path: str, volumes: Mapping[str, VolumeRequest]) -> list[str]:
    """Validation errors of a group's ``Volumes`` (prefixed with ``path``)."""
    errs = []
    for key, req in volumes.items():
        vpath = f"{path}[{key!r}]"
        if not key:
            errs.append(f"{vpath}: a volume needs a name")
        if req.type != HOST_VOLUME_TYPE:
            errs.append(f"{vpath}.Type: only host volumes are supported, got {req.type!r}")
        if not req.source:
            errs.append(f"{vpath}.Source: volume {key!r} needs a source (the client's host_volume name)")
        if req.name and req.name != key:
            errs.append(f"{vpath}.Name: {req.name!r} differs from its key {key!r}")
    return errs


def mount_problems(
    path: str, mounts: tuple[VolumeMount, ...], volumes: Mapping[str, VolumeRequest]
) -> list[str]:
    """Validation errors of a task's ``VolumeMounts`` against its group's ``Volumes``."""
    errs = []
    for i, m in enumerate(mounts):
        mpath = f"{path}[{i}]"
        if m.volume not in volumes:
            errs.append(f"{mpath}.Volume: volume {m.volume!r} is not requested by the task group")
        dest = m.destination
        if not dest:
            errs.append(f"{mpath}.Destination: missing")
        elif ".." in dest.split("/") or "\x00" in dest:
            errs.append(f"{mpath}.Destination: {dest!r} may not contain '..'")
        if m.propagation_mode not in ("private", ""):
            errs.append(f'{mpath}.PropagationMode: only "private" is supported, got {m.propagation_mode!r}')
    return errs


def node_has_volumes(
    host_volumes: Mapping[str, ClientHostVolumeConfig], requests: Mapping[str, VolumeRequest]
) -> bool:
    """Nomad's HostVolumeChecker for static host volumes."""
    for req in requests.values():
        cfg = host_volumes.get(req.source)
        if cfg is None or (cfg.read_only and not req.read_only):
            return False
    return True


def mount_read_only(cfg: ClientHostVolumeConfig, req: VolumeRequest, mount: VolumeMount) -> bool:
    """A mount is read-only when the host volume, the group's request or the mount says so."""
    return cfg.read_only or req.read_only or mount.read_only

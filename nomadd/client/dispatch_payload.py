"""Nomad's dispatch_payload task hook: a dispatched job's payload written to the task's
``local/<dispatch_payload.file>`` before the task starts (every start: a restart finds it too).

The file name was checked at registration not to leave the task dir (``../x`` is the task
dir itself, as Nomad allows); it is checked again here,
against the resolved path, since the client trusts nothing about where it writes.
"""

from __future__ import annotations

import base64
import binascii
import os

from nomadd.structs.errors import DriverError
from nomadd.structs.job import Job, Task

__all__ = ["write_dispatch_payload"]

PAYLOAD_MODE = 0o644


def write_dispatch_payload(local_dir: str, task: Task, job: Job | None) -> str:
    """Write the payload of ``job`` for ``task``; the path written, or "" when there is nothing
    to write. Raises :class:`DriverError` when it cannot be written (the task then fails)."""
    if job is None or task.dispatch_payload is None or not task.dispatch_payload.file:
        return ""
    try:
        data = base64.b64decode(job.payload or "", validate=True)
    except (binascii.Error, ValueError):
        raise DriverError("dispatch payload is not valid base64") from None
    local = os.path.realpath(local_dir)
    task_dir = os.path.dirname(local)
    path = os.path.realpath(os.path.join(local, task.dispatch_payload.file))
    if not path.startswith(task_dir + os.sep):
        raise DriverError(f"dispatch_payload file {task.dispatch_payload.file!r} escapes the task dir")
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        tmp = f"{path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PAYLOAD_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as err:
        raise DriverError(f"failed to write dispatch payload: {err}") from err
    return path

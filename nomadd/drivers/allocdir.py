"""The allocation directory layout (Nomad's ``client/allocdir``)::

    <root>/<alloc_id>/                 0711  (others may traverse, not list)
        alloc/                         0755  shared by the alloc's tasks (NOMAD_ALLOC_DIR)
            logs/                      0755  <task>.stdout.N / <task>.stderr.N
            data/                      0777
            tmp/                       1777
        <task>/                        0755  the task's working dir (NOMAD_TASK_DIR is local/)
            local/                     0755  owned by the task user
            secrets/                   0700  owned by the task user (NOMAD_SECRETS_DIR)
            tmp/                       1777
        .executor/<task>/              0700  executor spec, status and log (root only)

Blocking (mkdir, chown): call through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
from dataclasses import dataclass

from nomadd.structs.errors import DriverError

logger = logging.getLogger(__name__)

ALLOC_ROOT_MODE = 0o711
SHARED_MODE = 0o755
DATA_MODE = 0o777
TMP_MODE = 0o1777
TASK_MODE = 0o755
LOCAL_MODE = 0o755
SECRETS_MODE = 0o700
EXECUTOR_MODE = 0o700


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDirs:
    """The paths of one task inside its allocation dir."""

    task_dir: str
    local_dir: str
    secrets_dir: str
    tmp_dir: str
    executor_dir: str


def _mkdir(path: str, mode: int, uid: int = -1, gid: int = -1) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)  # makedirs' mode is filtered by the umask
    if (uid, gid) != (-1, -1) and os.geteuid() == 0:
        os.chown(path, uid, gid)


def _validate_name(kind: str, name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name or name.startswith("."):
        raise DriverError(f"invalid {kind} {name!r} for a directory name")


class AllocDir:
    """One allocation's directory tree under the client's alloc root."""

    def __init__(self, root: str, alloc_id: str) -> None:
        _validate_name("alloc id", alloc_id)
        self.root = root
        self.alloc_id = alloc_id
        self.path = os.path.join(root, alloc_id)
        self.shared_dir = os.path.join(self.path, "alloc")
        self.logs_dir = os.path.join(self.shared_dir, "logs")
        self.data_dir = os.path.join(self.shared_dir, "data")
        self.tmp_dir = os.path.join(self.shared_dir, "tmp")

    def build(self) -> None:
        """Create the alloc-level dirs (idempotent)."""
        os.makedirs(self.root, exist_ok=True)
        _mkdir(self.path, ALLOC_ROOT_MODE)
        _mkdir(self.shared_dir, SHARED_MODE)
        _mkdir(self.logs_dir, SHARED_MODE)
        _mkdir(self.data_dir, DATA_MODE)
        _mkdir(self.tmp_dir, TMP_MODE)
        _mkdir(os.path.join(self.path, ".executor"), EXECUTOR_MODE)

    def task_dirs(self, task_name: str) -> TaskDirs:
        _validate_name("task name", task_name)
        task_dir = os.path.join(self.path, task_name)
        return TaskDirs(
            task_dir=task_dir,
            local_dir=os.path.join(task_dir, "local"),
            secrets_dir=os.path.join(task_dir, "secrets"),
            tmp_dir=os.path.join(task_dir, "tmp"),
            executor_dir=os.path.join(self.path, ".executor", task_name),
        )

    def build_task(self, task_name: str, user: str = "") -> TaskDirs:
        """Create a task's dirs; ``local`` and ``secrets`` are owned by ``user`` when set (root).

        Raises DriverError for an unknown user.
        """
        uid = gid = -1
        if user:
            try:
                pw = pwd.getpwnam(user)
            except KeyError as err:
                raise DriverError(f"unknown user {user!r} for task {task_name}") from err
            uid, gid = pw.pw_uid, pw.pw_gid
        self.build()
        dirs = self.task_dirs(task_name)
        _mkdir(dirs.task_dir, TASK_MODE)
        _mkdir(dirs.local_dir, LOCAL_MODE, uid, gid)
        _mkdir(dirs.secrets_dir, SECRETS_MODE, uid, gid)
        _mkdir(dirs.tmp_dir, TMP_MODE)
        _mkdir(dirs.executor_dir, EXECUTOR_MODE)
        return dirs

    def destroy(self) -> None:
        """Remove the whole allocation dir (after its tasks are destroyed)."""
        shutil.rmtree(self.path, ignore_errors=True)
        logger.debug("alloc dir removed path=%s", self.path)


def executor_dir_for(alloc_dir: str, task_name: str) -> str:
    """The executor dir of a task given its shared ``<root>/<alloc_id>/alloc`` dir."""
    return os.path.join(os.path.dirname(os.path.normpath(alloc_dir)), ".executor", task_name)

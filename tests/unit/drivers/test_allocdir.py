from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from nomadd.drivers.allocdir import AllocDir, executor_dir_for
from nomadd.structs.errors import DriverError

from .conftest import root_or_skip


def mode(p: str) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_layout_and_modes(tmp_path: Path) -> None:
    ad = AllocDir(str(tmp_path), "alloc1")
    dirs = ad.build_task("web")
    assert mode(ad.path) == 0o711
    assert mode(ad.logs_dir) == 0o755
    assert mode(ad.data_dir) == 0o777
    assert mode(ad.tmp_dir) == 0o1777
    assert mode(dirs.secrets_dir) == 0o700
    assert mode(dirs.tmp_dir) == 0o1777
    assert mode(dirs.executor_dir) == 0o700
    assert os.path.isdir(dirs.local_dir)
    assert dirs.task_dir == os.path.join(ad.path, "web")
    assert executor_dir_for(ad.shared_dir, "web") == dirs.executor_dir
    ad.build_task("web")  # idempotent
    ad.destroy()
    assert not os.path.exists(ad.path)


@pytest.mark.parametrize("name", ["", "..", "a/b", ".executor"])
def test_rejects_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(DriverError):
        AllocDir(str(tmp_path), "a").build_task(name)


def test_unknown_user(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="unknown user"):
        AllocDir(str(tmp_path), "a").build_task("web", "no-such-user-xyz")


@pytest.mark.root
def test_secrets_owned_by_task_user(tmp_path: Path) -> None:
    root_or_skip()
    dirs = AllocDir(str(tmp_path), "a").build_task("web", "nobody")
    nobody = pwd.getpwnam("nobody").pw_uid
    assert os.stat(dirs.secrets_dir).st_uid == nobody
    assert os.stat(dirs.local_dir).st_uid == nobody
    assert os.stat(dirs.task_dir).st_uid == 0

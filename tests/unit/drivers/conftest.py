from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nomadd.drivers.allocdir import AllocDir
from nomadd.drivers.base import TaskConfig

# Every wait in these tests is bounded by this (seconds): a hang fails instead of blocking CI.
DEADLINE_S = 15.0


def root_or_skip() -> None:
    """Skip a root-only test when not root, except under CI=true where it must fail loudly."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("root-only test under CI=true but not running as root")
        pytest.skip("needs root")


MakeTask = Callable[..., TaskConfig]


@pytest.fixture
def make_task(tmp_path: Path) -> MakeTask:
    """Build a TaskConfig with a real alloc dir under tmp_path."""
    root = tmp_path / "alloc"
    unique_alloc_id = f"test-{uuid.uuid4().hex[:12]}"
    os.chmod(tmp_path, 0o755)  # so that a task running as nobody can reach its dirs

    def make(
        command: str = "/bin/sh",
        args: list[str] | None = None,
        *,
        task: str = "web",
        alloc_id: str = "",
        user: str = "",
        env: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        **kw: Any,
    ) -> TaskConfig:
        # Unique per test: cgroup names derive from it and tests may run in parallel.
        alloc_id = alloc_id or unique_alloc_id
        ad = AllocDir(str(root), alloc_id)
        dirs = ad.build_task(task, user)
        base_env = {"PATH": "/usr/bin:/bin", "NOMAD_ALLOC_ID": alloc_id, "NOMAD_TASK_NAME": task}
        return TaskConfig(
            alloc_id=alloc_id,
            task_name=task,
            config=config if config is not None else {"command": command, "args": args or []},
            env={**base_env, **(env or {})},
            user=user,
            task_dir=dirs.task_dir,
            alloc_dir=ad.shared_dir,
            log_dir=ad.logs_dir,
            **kw,
        )

    return make


def read_log(cfg: TaskConfig, stream: str = "stdout") -> str:
    out = []
    i = 0
    while os.path.exists(p := os.path.join(cfg.log_dir, f"{cfg.task_name}.{stream}.{i}")):
        with open(p) as f:
            out.append(f.read())
        i += 1
    return "".join(out)


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def exists(path: str) -> bool:
    return os.path.exists(path)


def touch(path: str) -> None:
    with open(path, "w"):
        pass

"""Mount and control :mod:`tests.powercut.fs` from a test (this module does not import FUSE)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import ROOT

__all__ = ["PowerCutMount", "fuse_missing"]


def fuse_missing() -> str:
    """Why a power-cut mount cannot be made here, or ""."""
    if os.geteuid() != 0:
        return "needs root to mount FUSE"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 missing (Debian package fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as err:
        return f"mfusepy or libfuse3 missing: {err}"
    return ""


class PowerCutMount:
    """One power-cut file system at ``path``, served by its own process (killed by PID)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.log = path.with_name(path.name + ".fs.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.powercut.fs", str(path)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while not os.path.ismount(path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"power-cut fs did not mount at {path}: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def cut(self) -> None:
        """Lose power: everything not fsync'ed is gone (kill the processes using it first)."""
        os.sync()  # pages the kernel still caches (page-cache mode) reach the fs, as volatile writes
        with open(self.path / ".powercut", "wb") as f:
            f.write(b"cut")

    def stats(self) -> dict[str, Any]:
        with open(self.path / ".powercut", "rb") as f:
            return dict(json.loads(f.read() or b"{}"))

    def close(self) -> None:
        subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False, capture_output=True)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

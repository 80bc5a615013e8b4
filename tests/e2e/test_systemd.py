"""The Debian package in a booted systemd: runs scripts/e2e-systemd (issue 6, docs/packaging.md).

The script builds the .deb, lints it (lintian, systemd-analyze verify/security), boots bookworm
in systemd-nspawn, installs the package offline and checks the acceptance items; it cleans up
its container, cgroups and work directory itself. It needs root and systemd-nspawn (the script
installs systemd-container with apt-get when missing, so only a non-Debian host or a host without
nspawn support skips). Under CI=true nothing skips: a missing peer is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import is_root, need

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "e2e-systemd"
# The e2e takes about 1.5 minutes on an idle 2-core machine (half of it building the package) and
# 3.5 under heavy load (measured with a load average of 12); issue 6 wants < 5 on a fresh machine.
# The limit is for a hung run, not a performance gate: it must not make a loaded CI flaky.
E2E_TIMEOUT_S = 480
# After a SIGTERM the script still shuts its container down (nsenter calls time out at 60 s).
CLEANUP_TIMEOUT_S = 90

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.slow]


def _nspawn_possible() -> tuple[bool, str]:
    if not is_root():
        return False, "needs root (systemd-nspawn, dpkg)"
    if not Path("/etc/debian_version").exists() or shutil.which("apt-get") is None:
        return False, "needs a Debian host (apt-get, dpkg-buildpackage)"
    if not Path("/sys/fs/cgroup").is_dir():
        return False, "no cgroup filesystem for systemd-nspawn"
    return True, ""


@pytest.mark.timeout(E2E_TIMEOUT_S + CLEANUP_TIMEOUT_S + 30)
def test_deb_in_booted_systemd() -> None:
    ok, reason = _nspawn_possible()
    need(ok, reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    # Its own session, so a timeout can stop it: SIGTERM first (its EXIT trap shuts the
    # container down and removes cgroups and files), SIGKILL only if that does not end it.
    proc = subprocess.Popen(
        [str(SCRIPT)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=E2E_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=CLEANUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail(f"scripts/e2e-systemd took more than {E2E_TIMEOUT_S} s:\n{out[-6000:]}")
    sys.stdout.write(out)  # shown with -rA / on failure: timings and figures
    assert proc.returncode == 0, f"scripts/e2e-systemd failed (exit {proc.returncode}):\n{out[-8000:]}"
    assert "E2E PASS" in out

"""A private podman service speaking the Docker Engine API, for the docker driver's tests.

podman runs with runc (crun refuses these machines' cgroup layout) and the ulimits the sandbox
allows, from a ``containers.conf`` of its own (``CONTAINERS_CONF``), with its own storage
(``--root``/``--runroot`` under the test's temp dir: the host's images are never touched). No
registry is reachable, so the test image is built here: ``podman import`` of a busybox-static
rootfs, tagged with the names the tests' jobs use. The service is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import is_root, need, wait_for

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
"""
TEST_IMAGE = "localhost/nomadd-test:latest"
BUSYBOX = "/bin/busybox"
# What the image runs when a job gives no command (python-nomad's example job gives none): a
# stand-in for redis answering on its port.
DEFAULT_CMD = '["/bin/sh", "-c", "echo stand-in for redis; exec httpd -f -p 6379 -h /"]'


def need_podman() -> None:
    need(is_root(), "podman's Docker API service needs root")
    for tool in ("podman", "runc"):
        need(shutil.which(tool) is not None, f"{tool} is not installed (scripts/test installs it)")
    need(os.path.exists(BUSYBOX), "busybox-static is not installed (scripts/test installs it)")


def _rootfs_tar(root: Path) -> Path:
    """A busybox-static rootfs: /bin/busybox, a symlink per applet, /tmp and an /etc/passwd."""
    rootfs = root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for d in ("tmp", "etc", "srv", "proc", "sys", "dev"):
        (rootfs / d).mkdir()
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
    )
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    tar = root / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(rootfs, arcname=".")
    return tar


@dataclass
class Podman:
    """One ``podman system service`` on a socket in ``root``."""

    root: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "podman.log"

    @property
    def socket(self) -> Path:
        return self.root / "podman.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.root / "containers.conf")}

    def podman(self, *args: str, timeout: float = 60.0) -> str:
        cmd = ["podman", "--root", str(self.root / "storage"), "--runroot", str(self.root / "run"), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=timeout)
        assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr[-2000:]}"
        return done.stdout

    def start(self, tags: tuple[str, ...] = ()) -> Podman:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "containers.conf").write_text(CONTAINERS_CONF)
        self.podman("import", "--change", f"CMD {DEFAULT_CMD}", str(_rootfs_tar(self.root)), TEST_IMAGE)
        for tag in tags:
            self.podman("tag", TEST_IMAGE, tag)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    "podman", "--root", str(self.root / "storage"), "--runroot", str(self.root / "run"),
                    "system", "service", "--time=0", self.endpoint,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
            )  # fmt: skip
        wait_for(self.socket.exists, timeout=30, what="podman's API socket")
        return self

    def containers(self, *filters: str) -> list[str]:
        """IDs of the containers (running or not) matching ``label=...`` filters."""
        args = ["ps", "-a", "-q", "--no-trunc"]
        for f in filters:
            args += ["--filter", f]
        return self.podman(*args).split()

    def stop(self) -> None:
        """Remove every container, then stop the service (by its PID)."""
        if self.proc is None:
            return
        try:
            self.podman("rm", "-f", "-a", "-t", "0", timeout=60)
        except (AssertionError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        # podman keeps an exec session's conmon for minutes after the command ended
        marker = str(self.root)
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if marker in cmdline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(entry), signal.SIGKILL)

"""Power cuts lose no acknowledged write: three real server agents, each with its data dir on its
own power-cut file system (tests/powercut/fs.py, FUSE: what was not fsync'ed is lost), under
concurrent variable writes through every server. Three rounds: (a) all three lose power, (b) the
leader alone, (c) the leader and one follower. After each, the dead ones restart, a leader is
elected, and every write that was acknowledged (HTTP 200) is there.

``NOMADD_TEST_RAFT_FSYNC=0`` in the environment (the test-only switch, passed on to the agents)
shows the test failing when raft does not fsync.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.helpers import need
from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.powercut.mount import PowerCutMount, fuse_missing

pytestmark = [pytest.mark.root, pytest.mark.slow]

WRITERS = 6
LOAD_S = 2.5


class Writers:
    """Threads putting variables through all live servers; records each acknowledged path."""

    def __init__(self, servers: Sequence[Agent], tag: str) -> None:
        self.servers = servers
        self.tag = tag
        self.acked: list[str] = []
        self.failed = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(WRITERS)]
        for t in self._threads:
            t.start()

    def _run(self, n: int) -> None:
        targets = itertools.cycle(
            self.servers[n % len(self.servers) :] + self.servers[: n % len(self.servers)]
        )
        for i in itertools.count():
            if self._stop.is_set():
                return
            server = next(targets)
            if not server.running():
                continue
            path = f"{self.tag}/w{n}/{i}"
            try:
                server.api("PUT", f"/v1/var/{path}", {"Items": {"i": str(i)}}, timeout=5)
            except (HTTPError, OSError):
                self.failed += 1
                time.sleep(0.05)
                continue
            self.acked.append(path)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


def _stored(server: Agent, prefix: str) -> set[str]:
    reply = server.api("GET", "/v1/vars", params={"prefix": prefix}, timeout=10)
    return {v["Path"] for v in reply}


def _raft_tracebacks(output: str) -> list[str]:
    """Tracebacks in an agent's log that go through the raft package or pysyncobj (others, such
    as /v1/agent/self answered before gossip started, are not this test's business)."""
    out = []
    for chunk in output.split("Traceback (most recent call last):")[1:]:
        lines = []
        for line in chunk.splitlines()[1:]:
            if re.match(r"\s*\d{4}-\d\d-\d\dT", line):  # the next log line
                break
            lines.append(line)
        text = "\n".join(lines)
        if "/server/raft/" in text or "pysyncobj" in text:
            out.append(text)
    return out


def _power_cut(
    cluster: Cluster, servers: list[Agent], mounts: dict[str, PowerCutMount], victims: list[Agent], tag: str
) -> tuple[int, list[str]]:
    """Load, cut power to ``victims`` under it, restart them; returns (acked, lost paths)."""
    writers = Writers(servers, tag)
    time.sleep(LOAD_S)
    for v in victims:
        v.kill(signal.SIGKILL)
    for v in victims:
        mounts[v.name].cut()
    time.sleep(1.0 if len(victims) < len(servers) else 0)  # survivors may still take writes
    writers.stop()
    assert len(writers.acked) > 20, (
        f"too few acknowledged writes: {len(writers.acked)} ({writers.failed} failed)"
    )
    for v in victims:
        v.start()
    for s in servers:
        s.wait_http(timeout=60)
    leader = cluster.wait_leader(servers, timeout=60)
    acked = set(writers.acked)
    deadline = time.monotonic() + 20
    while True:  # reads on a new leader may lag its commit index briefly; loss does not heal
        lost = acked - _stored(leader, tag)
        if not lost or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return len(acked), sorted(lost)


def test_the_power_cut_fs_keeps_only_what_was_fsynced(tmp_path: Path) -> None:
    need(not fuse_missing(), fuse_missing())
    m = PowerCutMount(tmp_path / "mnt")
    try:
        d = m.path / "d"
        d.mkdir(mode=0o700)
        with open(d / "a", "wb") as f:
            f.write(b"hello")
            f.flush()
            os.fsync(f.fileno())
        for synced_dir in (d, m.path):
            fd = os.open(synced_dir, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(fd)
            os.close(fd)
        with open(d / "a", "ab") as f:
            f.write(b" world")  # not fsync'ed
        (d / "b").write_bytes(b"new name, never synced")
        with open(d / "c.tmp", "wb") as f:
            f.write(b"renamed")
            f.flush()
            os.fsync(f.fileno())
        os.replace(d / "c.tmp", d / "c")  # the directory is not fsync'ed after
        assert (d / "a").read_bytes() == b"hello world"
        m.cut()
        assert (d / "a").read_bytes() == b"hello"
        assert sorted(os.listdir(d)) == ["a"]
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert m.stats()["cuts"] == 1
    finally:
        m.close()


def test_acknowledged_writes_survive_power_cuts(tmp_path: Path) -> None:
    need(not fuse_missing(), fuse_missing())
    mounts: dict[str, PowerCutMount] = {}
    cluster = Cluster(tmp_path)
    try:
        servers = []
        for i in range(3):
            name = f"server{i + 1}"
            mounts[name] = PowerCutMount(tmp_path / f"mnt-{name}")
            servers.append(
                cluster.add_server(bootstrap_expect=3, name=name, extra={"data_dir": str(mounts[name].path)})
            )
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=60)
        results = {}
        results["all"] = _power_cut(cluster, servers, mounts, list(servers), "a")
        leader = cluster.wait_leader(servers, timeout=60)
        results["leader"] = _power_cut(cluster, servers, mounts, [leader], "b")
        leader = cluster.wait_leader(servers, timeout=60)
        follower = next(s for s in servers if s is not leader)
        results["leader+follower"] = _power_cut(cluster, servers, mounts, [leader, follower], "c")
        summary = {k: (acked, len(lost)) for k, (acked, lost) in results.items()}
        print("power cuts (acknowledged, lost):", summary)
        for case, (_, lost) in results.items():
            assert not lost, (
                f"power cut of {case}: {len(lost)} acknowledged writes lost, e.g. {lost[:5]}; {summary}"
            )
        for s in servers:
            bad = _raft_tracebacks(s.output)
            assert not bad, f"{s.name} logged a raft traceback:\n{bad[0]}"
    finally:
        cluster.close()
        for m in mounts.values():
            m.close()

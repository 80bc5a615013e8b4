"""Issue 2 acceptance 3: graceful leave (leave_on_terminate + SIGTERM) of the leader, then of a
follower: the peer set shrinks, the member shows ``left``, the rest keeps accepting writes,
the leaving agent exits 0."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from tests.integration.cluster import Agent, Cluster, HTTPError

pytestmark = pytest.mark.slow


def _leave(cluster: Cluster, leaving: Agent, rest: list[Agent]) -> None:
    leaving.kill(signal.SIGTERM)
    assert leaving.wait_exit(20) == 0, leaving.output[-3000:]
    cluster.wait_for(
        lambda: all(
            leaving.raft_addr not in cluster.peers(r) and len(cluster.peers(r)) == len(rest) for r in rest
        ),
        15,
        f"{leaving.name} gone from every peer set",
    )
    cluster.wait_for(
        lambda: all(cluster.members(r).get(leaving.member_name) == "left" for r in rest),
        15,
        f"{leaving.name} shown as left",
    )
    cluster.wait_leader(rest, timeout=20)
    for i, r in enumerate(rest):
        r.api("PUT", f"/v1/var/after-{leaving.name}/{i}", {"Items": {"v": "1"}})


def test_graceful_leave_of_leader_then_follower(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers = [
            cluster.add_server(bootstrap_expect=3, extra={"leave_on_terminate": True}) for _ in range(3)
        ]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=40)
        leader.api("PUT", "/v1/var/before", {"Items": {"v": "1"}})

        rest = [s for s in servers if s is not leader]
        # keep writing through a follower while the leader leaves: every acknowledged write
        # must survive (some may fail during the hand-over; those are not acknowledged)
        acked: list[str] = []
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set():
                path = f"load/{i}"
                i += 1
                try:
                    rest[0].api("PUT", f"/v1/var/{path}", {"Items": {"v": "1"}}, timeout=5)
                except (HTTPError, OSError):
                    continue
                acked.append(path)

        t = threading.Thread(target=writer)
        t.start()
        try:
            cluster.wait_for(lambda: len(acked) >= 5, 20, "writes flowing")
            _leave(cluster, leader, rest)
        finally:
            stop.set()
            t.join(15)
        assert "leadership transfer before leave moved=True" in leader.output

        new_leader = cluster.wait_leader(rest)
        follower = next(s for s in rest if s is not new_leader)
        _leave(cluster, follower, [new_leader])

        paths = {v["Path"] for v in new_leader.api("GET", "/v1/vars")}
        assert set(acked) <= paths
        assert paths - set(acked) - {p for p in paths if p.startswith("load/")} == {
            "before",
            f"after-{leader.name}/0",
            f"after-{leader.name}/1",
            f"after-{follower.name}/0",
        }
    finally:
        cluster.close()

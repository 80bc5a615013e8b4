"""Issue 2 acceptance 5 (root): three servers in their own network namespaces; the leader is
partitioned off. The minority cannot commit; the majority elects a leader and keeps writing;
after healing, the old leader catches up and no committed write is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import is_root, need
from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.integration.netns import NetnsLab

pytestmark = [pytest.mark.slow, pytest.mark.root]


def _paths(agent: Agent) -> set[str]:
    return {v["Path"] for v in agent.api("GET", "/v1/vars", params={"stale": "true"})}


def test_partitioned_minority_cannot_commit_and_catches_up(tmp_path: Path) -> None:
    need(is_root(), "needs root to create network namespaces")
    lab = NetnsLab(3)
    cluster = Cluster(tmp_path)
    try:
        servers = [cluster.add_server(bootstrap_expect=3, ip=lab.ips[i], wrap=lab.wrap(i)) for i in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=60)
        written = set()
        for i in range(5):
            leader.api("PUT", f"/v1/var/before/{i}", {"Items": {"v": str(i)}})
            written.add(f"before/{i}")

        cut = servers.index(leader)
        majority = [s for s in servers if s is not leader]
        lab.partition(cut)
        t0 = time.monotonic()
        new_leader = cluster.wait_leader(majority, timeout=30)
        print(f"\npartition: majority elected {new_leader.name} in {time.monotonic() - t0:.2f}s")
        for i in range(5):
            majority[i % 2].api("PUT", f"/v1/var/during/{i}", {"Items": {"v": str(i)}})
            written.add(f"during/{i}")
        # the isolated old leader cannot commit: its write fails (no quorum, then no leader)
        with pytest.raises((HTTPError, OSError)):
            leader.api("PUT", "/v1/var/minority", {"Items": {"v": "x"}}, timeout=20)
        assert "minority" not in _paths(leader)
        assert not written <= _paths(leader)

        lab.heal(cut)
        cluster.wait_for(lambda: _paths(leader) == written, 40, "old leader caught up")
        cluster.wait_leader(servers, timeout=30)
        leader.api("PUT", "/v1/var/after", {"Items": {"v": "1"}}, timeout=15)
        written.add("after")
        for s in servers:
            cluster.wait_for(lambda s=s: _paths(s) == written, 20, f"every write on {s.name}")
    finally:
        cluster.close()
        lab.close()

"""Issue 8 acceptance 5: docs/runbooks/quorum-loss.md Case C, with real agents.

Three servers hold jobs and variables; two are destroyed (SIGKILL, data dir deleted). The
survivor alone has no leader. It is stopped, ``nomadd operator raft recover`` rewrites its peer
set to itself, and once restarted it leads a one-server cluster serving every committed job;
two new, empty servers join it with ``nomadd server join`` and receive everything. Every
``nomadd`` command run here is a command of the runbook, with the runbook's example addresses
and config paths replaced by the test's.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.integration.runbook import Runbook

pytestmark = pytest.mark.slow

RUNBOOK = Runbook("quorum-loss.md", "## Case C")
RUNBOOK_CONFIG = "-config=/etc/nomadd/server.toml -config=/etc/nomadd/server.d"


def run_runbook(agent: Agent, command: str, subs: dict[str, str], timeout: float = 60) -> str:
    return RUNBOOK.run(agent, command, subs, timeout)


def test_runbook_case_c_recovers_a_survivor_and_grows_back(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=40)
        jobs = [f"job-{i}" for i in range(5)]
        for j in jobs:
            job = {
                "ID": j,
                "Type": "service",
                "Datacenters": ["dc1"],
                "TaskGroups": [
                    {
                        "Name": "g",
                        "Count": 1,
                        "Tasks": [{"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/true"}}],
                    }
                ],
            }
            leader.api("PUT", "/v1/jobs", {"Job": job})
        for i in range(30):
            leader.api("PUT", f"/v1/var/app/k{i}", {"Items": {"v": str(i)}})

        survivor = servers[2]
        subs = {
            RUNBOOK_CONFIG: f"-config={survivor.config_path}",
            "10.0.0.11:4647": survivor.raft_addr,
            "10.0.0.11": survivor.serf_addr,
        }
        # two servers are destroyed with their data; no quorum is left
        for s in servers[:2]:
            s.kill(signal.SIGKILL)
            shutil.rmtree(s.data_dir)
        time.sleep(6)  # past the leader fallback: nobody leads, writes fail
        with pytest.raises((HTTPError, OSError)):
            survivor.api("PUT", "/v1/var/lost", {"Items": {"v": "1"}}, timeout=20)

        # runbook step 2-3: stop the survivor, recover its peer set
        survivor.kill(signal.SIGTERM)
        assert survivor.wait_exit(30) in (0, 1)  # 1: stopped by a signal, as Nomad's agent
        out = run_runbook(
            survivor,
            "nomadd operator raft recover -config=/etc/nomadd/server.toml -config=/etc/nomadd/server.d "
            "-peers=10.0.0.11:4647",
            subs,
        )
        assert "Recovered raft state" in out and survivor.raft_addr in out

        # step 4: it leads alone, with every committed job
        survivor.start()
        cluster.wait_for(lambda: cluster.leader_of([survivor]), timeout=40, what="survivor leads")
        peers = run_runbook(survivor, "nomadd operator raft list-peers", subs)
        assert survivor.raft_addr in peers and "leader" in peers and len(peers.strip().splitlines()) == 2
        status = run_runbook(survivor, "nomadd job status", subs)
        assert all(j in status for j in jobs), status
        assert len(survivor.api("GET", "/v1/vars", params={"prefix": "app/"})) == 30

        # step 5: two new, empty servers join one at a time
        fresh = []
        for _ in range(2):
            new = cluster.add_server(bootstrap_expect=3)
            new.start()
            new.wait_http()
            run_runbook(new, "nomadd server join 10.0.0.11", subs)
            fresh.append(new)
            want = 1 + len(fresh)
            cluster.wait_for(
                lambda want=want: len(cluster.peers(survivor)) == want, timeout=60, what=f"{want} voters"
            )
        group = [survivor, *fresh]
        cluster.wait_leader(group, timeout=40)

        # step 6: every server has every job; writes work
        members = run_runbook(survivor, "nomadd server members", subs)
        assert members.count(" alive ") >= 3, members
        for s in group:
            cluster.wait_for(
                lambda s=s: (
                    {j["ID"] for j in s.api("GET", "/v1/jobs", params={"stale": "true"})} >= set(jobs)
                ),
                timeout=30,
                what=f"jobs on {s.name}",
            )
            assert len(s.api("GET", "/v1/vars", params={"prefix": "app/", "stale": "true"})) == 30
        leader = cluster.wait_leader(group, timeout=30)
        leader.api("PUT", "/v1/var/after", {"Items": {"v": "1"}})
        # and the new cluster tolerates one failure again
        follower = next(s for s in group if s is not leader)
        follower.kill(signal.SIGKILL)
        rest = [s for s in group if s is not follower]
        cluster.wait_leader(rest, timeout=40).api("PUT", "/v1/var/after2", {"Items": {"v": "1"}})
    finally:
        cluster.close()

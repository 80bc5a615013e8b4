"""A Raft apply timeout on a write forwarded by a follower comes back to the HTTP caller as a 5xx
with its error type, not a traceback: five real servers, three of them frozen (SIGSTOP) so the
leader has no quorum, and a job registered through one of the two that still run."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from nomadd.server.raft import APPLY_TIMEOUT_ENV
from tests.integration.cluster import Cluster, HTTPError

pytestmark = pytest.mark.slow

JOB = {
    "Job": {
        "ID": "web",
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 1,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "raw_exec",
                        "Config": {"command": "/bin/sleep", "args": ["1000"]},
                        "Resources": {"CPU": 100, "MemoryMB": 64},
                    }
                ],
            }
        ],
    }
}


def test_a_forwarded_write_that_times_out_is_a_5xx_naming_raft_apply_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # shorter than the leader's 4 s step-down without a quorum: the apply times out first
    monkeypatch.setenv(APPLY_TIMEOUT_ENV, "1.0")
    cluster = Cluster(tmp_path)
    try:
        servers = [cluster.add_server(bootstrap_expect=5) for _ in range(5)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=60)
        followers = [s for s in servers if s is not leader]
        entry, frozen = followers[0], followers[1:]
        entry.api("PUT", "/v1/var/warmup", {"Items": {"k": "v"}})  # forwarding works
        for s in frozen:
            s.kill(signal.SIGSTOP)
        try:
            with pytest.raises(HTTPError) as err:
                entry.api("PUT", "/v1/jobs", JOB, timeout=30)
        finally:
            for s in frozen:
                s.kill(signal.SIGCONT)
        assert 500 <= err.value.status < 600, err.value
        assert "RaftApplyError" in err.value.body, err.value.body
        assert "Traceback" not in err.value.body
        for s in servers:
            assert "Traceback" not in s.output, f"{s.name} logged a traceback"
    finally:
        cluster.close()

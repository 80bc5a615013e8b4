"""A server cut off from a working leader does not depose it when it comes back (Raft
pre-vote, ``nomadd/server/raft/prevote.py``).

Three real server agents in their own network namespaces (root). A follower's link goes down
for several election timeouts: its TCP connections stay open (nothing resets them), so to it
the others are merely silent, and in plain Raft it raises its term at every timeout; when the
link comes back, the leader sees the higher term and steps down (an election for nothing, the
cluster without a leader meanwhile). With pre-vote nobody answers the cut-off server, it never
raises its term, and after the heal the same leader at the same term serves every server.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import is_root, need
from tests.integration.cluster import Agent, Cluster
from tests.integration.netns import NetnsLab

pytestmark = [pytest.mark.slow, pytest.mark.root]

CUT_S = 6.0  # the election timeout is 0.4-1.0 s: several timeouts


def _raft(agent: Agent) -> dict[str, Any]:
    try:
        return dict(agent.api("GET", "/v1/agent/self", timeout=2.0)["stats"]["raft"])
    except Exception:
        return {}


def test_a_follower_cut_off_and_back_does_not_depose_the_leader(tmp_path: Path) -> None:
    need(is_root(), "needs root to create network namespaces")
    lab = NetnsLab(3)
    c = Cluster(tmp_path)
    try:
        servers = [c.add_server(bootstrap_expect=3, ip=lab.ips[i], wrap=lab.wrap(i)) for i in range(3)]
        c.link(servers)
        for s in servers:
            s.start()
        leader = c.wait_leader(servers, timeout=60)
        leader.api("PUT", "/v1/var/prevote/before", {"Items": {"v": "1"}})
        time.sleep(2.0)  # settled
        term = _raft(leader)["term"]
        cut = next(i for i, s in enumerate(servers) if s is not leader)
        lab.partition(cut)
        time.sleep(CUT_S)
        during = _raft(servers[cut])
        lab.heal(cut)
        time.sleep(3.0)
        after = {s.name: (_raft(s).get("state"), _raft(s).get("term")) for s in servers}
        assert after[leader.name] == ("leader", term), (
            f"the leader at term {term} was deposed when {servers[cut].name} came back "
            f"(its term while cut off: {during.get('term')}): {after}"
        )
        assert {t for _, t in after.values()} == {term}, after
        leader.api("PUT", "/v1/var/prevote/after", {"Items": {"v": "1"}})
        c.wait_for(
            lambda: (
                len(servers[cut].api("GET", "/v1/vars", params={"stale": "true", "prefix": "prevote"})) == 2
            ),
            20,
            "the cut-off server has both writes",
        )
        assert "Traceback" not in "".join(s.output for s in servers)
    finally:
        c.close()
        lab.close()

"""Nomad's ``raft_multiplier`` scales the election and step-down timeouts pysyncobj gets."""

from __future__ import annotations

from typing import Any

from nomadd.server.raft import Raft, RaftConfig


def test_raft_multiplier_scales_the_election_and_step_down_timeouts() -> None:
    base = RaftConfig(self_addr="127.0.0.1:1", bind_addr="127.0.0.1:1", password="p")
    scaled = base.scaled(3)
    assert (scaled.election_min_s, scaled.election_max_s) == (
        base.election_min_s * 3,
        base.election_max_s * 3,
    )
    assert scaled.leader_fallback_s == base.leader_fallback_s * 3
    assert scaled.append_entries_period_s == base.append_entries_period_s  # heartbeats as often
    conf: Any = Raft(scaled, fsm=None)._make_conf()  # type: ignore[arg-type]
    assert (conf.raftMinTimeout, conf.raftMaxTimeout) == (scaled.election_min_s, scaled.election_max_s)
    assert conf.leaderFallbackTimeout == scaled.leader_fallback_s
    assert base.scaled(1) == base

"""Bootstrap and reconciliation decisions (pure functions)."""

from __future__ import annotations

from nomadd.gossip import Member, MemberStatus
from nomadd.server.membership import (
    ServerInfo,
    bootstrap_decision,
    parse_server,
    reconcile_plan,
    server_tags,
)


def _server(n: int, status: MemberStatus = MemberStatus.ALIVE, expect: int = 3) -> ServerInfo:
    return ServerInfo(
        name=f"s{n}.global",
        id=f"id{n}",
        region="global",
        datacenter="dc1",
        raft_addr=f"127.0.0.{n}:4647",
        http_addr=f"127.0.0.{n}:4646",
        expect=expect,
        status=status,
        build="0.1.0",
    )


def test_tags_round_trip_through_a_member() -> None:
    tags = server_tags(
        node_id="abc",
        region="eu",
        datacenter="dc9",
        raft_addr="10.0.0.1:4647",
        http_addr="10.0.0.1:4646",
        build="1.0",
        expect=1,
    )
    assert tags["role"] == "nomad"
    assert tags["bootstrap"] == "1"
    assert (tags["rpc_addr"], tags["port"]) == ("10.0.0.1", "4647")
    m = Member(name="n.eu", addr="10.0.0.1", port=4648, tags=tags, status=MemberStatus.ALIVE, incarnation=1)
    s = parse_server(m)
    assert s is not None
    assert (s.region, s.datacenter, s.raft_addr, s.http_addr, s.expect) == (
        "eu",
        "dc9",
        "10.0.0.1:4647",
        "10.0.0.1:4646",
        1,
    )
    client = Member(
        name="c", addr="x", port=1, tags={"role": "client"}, status=MemberStatus.ALIVE, incarnation=1
    )
    assert parse_server(client) is None


def test_bootstrap_waits_for_expected_servers_then_starts_with_all() -> None:
    me = _server(1)
    two = [me, _server(2)]
    d = bootstrap_decision(self_raft=me.raft_addr, expect=3, alive=two, peer_sets={"127.0.0.2:4647": []})
    assert d.start_with is None
    three = [*two, _server(3)]
    d = bootstrap_decision(self_raft=me.raft_addr, expect=3, alive=three, peer_sets={"127.0.0.2:4647": []})
    assert d.start_with is None  # server 3 has not answered Status.Peers yet
    d = bootstrap_decision(
        self_raft=me.raft_addr,
        expect=3,
        alive=three,
        peer_sets={"127.0.0.2:4647": [], "127.0.0.3:4647": []},
    )
    assert d.start_with == ("127.0.0.1:4647", "127.0.0.2:4647", "127.0.0.3:4647")


def test_existing_cluster_is_joined_not_bootstrapped() -> None:
    me = _server(4)
    alive = [me, _server(1), _server(2), _server(3)]
    existing = ["127.0.0.1:4647", "127.0.0.2:4647", "127.0.0.3:4647"]
    d = bootstrap_decision(
        self_raft=me.raft_addr, expect=3, alive=alive, peer_sets={"127.0.0.1:4647": existing}
    )
    assert d.start_with is None
    assert "existing cluster" in d.reason
    added = [*existing, me.raft_addr]
    d = bootstrap_decision(self_raft=me.raft_addr, expect=3, alive=alive, peer_sets={"127.0.0.1:4647": added})
    assert d.start_with == tuple(sorted(added))


def test_mismatched_expect_blocks_bootstrap() -> None:
    me = _server(1)
    alive = [me, _server(2), _server(3, expect=5)]
    peers: dict[str, list[str]] = {"127.0.0.2:4647": [], "127.0.0.3:4647": []}
    d = bootstrap_decision(self_raft=me.raft_addr, expect=3, alive=alive, peer_sets=peers)
    assert d.start_with is None
    assert "different bootstrap_expect" in d.reason


def test_reconcile_adds_alive_removes_left_keeps_failed() -> None:
    servers = [
        _server(1),
        _server(2, MemberStatus.FAILED),
        _server(3, MemberStatus.LEFT),
        _server(4),
    ]
    plan = reconcile_plan(
        self_raft="127.0.0.1:4647",
        servers=servers,
        raft_peers=["127.0.0.1:4647", "127.0.0.2:4647", "127.0.0.3:4647"],
    )
    assert plan.add == ("127.0.0.4:4647",)
    assert plan.remove == ("127.0.0.3:4647",)
    # a pruned member is gone from gossip altogether: removed too, never ourselves
    plan = reconcile_plan(
        self_raft="127.0.0.1:4647",
        servers=[_server(1)],
        raft_peers=["127.0.0.1:4647", "127.0.0.2:4647"],
        pruned=["127.0.0.2:4647", "127.0.0.1:4647"],
    )
    assert plan.remove == ("127.0.0.2:4647",)
    assert plan.add == ()


def test_servers_in_bootstrap_mode_are_never_added() -> None:
    plan = reconcile_plan(
        self_raft="127.0.0.1:4647",
        servers=[_server(1, expect=1), _server(2, expect=1), _server(3, expect=3)],
        raft_peers=["127.0.0.1:4647"],
    )
    assert plan.add == ("127.0.0.3:4647",)
    assert plan.refused == ("s2.global",)

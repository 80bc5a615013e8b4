"""``serf_peers.json`` (server/serf_peers.py): what a restarted server rejoins."""

from __future__ import annotations

import json
from pathlib import Path

from nomadd.gossip import Member, MemberStatus
from nomadd.server.serf_peers import SerfPeers


def _member(name: str, port: int, status: MemberStatus = MemberStatus.ALIVE) -> Member:
    return Member(name=name, addr="10.0.0.1", port=port, status=status, incarnation=0)


def test_the_addresses_read_at_start_survive_until_their_members_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "serf_peers.json"
    path.write_text(json.dumps(["10.0.0.1:4001", "10.0.0.1:4002", "10.0.0.1:4003"]))
    peers = SerfPeers(path)
    assert peers.known() == ["10.0.0.1:4001", "10.0.0.1:4002", "10.0.0.1:4003"]
    me = _member("me.global", 4000)
    peers.remember("me.global", [me])  # gossip's first event: our own join, nobody else known yet
    assert json.loads(path.read_text()) == ["10.0.0.1:4001", "10.0.0.1:4002", "10.0.0.1:4003"]
    # seen again: one alive, one suspect (it may still refute), one failed (Serf drops it)
    members = [
        me,
        _member("a.global", 4001),
        _member("b.west", 4002, MemberStatus.SUSPECT),
        _member("c.global", 4003, MemberStatus.FAILED),
        _member("d.global", 4004),  # new
    ]
    peers.remember("me.global", members)
    assert json.loads(path.read_text()) == ["10.0.0.1:4001", "10.0.0.1:4002", "10.0.0.1:4004"]
    peers.forget()
    assert not path.exists()
    peers.remember("me.global", [me])
    assert json.loads(path.read_text()) == [], "nothing read before is kept after a leave"


def test_without_a_data_dir_nothing_is_kept() -> None:
    peers = SerfPeers(None)
    peers.remember("me.global", [_member("a.global", 4001)])
    assert peers.known() == []

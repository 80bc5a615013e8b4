"""Server membership: gossip tags, the view of servers they give, bootstrap, reconciliation.

* :func:`server_tags` builds the tags every server gossips (Nomad's serf tags: ``role=nomad``,
  ``region``, ``dc``, ``id``, ``build``, ``vsn``, ``raft_vsn``, ``rpc_addr``, ``port``,
  ``expect``, ``bootstrap`` plus ``raft_addr`` and ``http_addr``, the addresses nomadd needs).
* :func:`parse_server` turns a gossip :class:`Member` into a :class:`ServerInfo` (None when the
  member is not a nomadd server).
* :func:`bootstrap_decision` is Nomad's ``maybeBootstrap``: with ``bootstrap_expect = N`` wait
  for N servers of the region; if any of them already belongs to a Raft cluster do not
  bootstrap (the leader will add us); otherwise start Raft with all of them.
* :func:`reconcile_plan` is the leader's ``reconcileMember``: alive server missing from Raft →
  add (unless it is in bootstrap mode, ``bootstrap_expect = 1``: it runs its own cluster);
  ``left`` (or pruned) server still in Raft → remove; ``failed`` stays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nomadd.gossip import Member, MemberStatus

logger = logging.getLogger(__name__)

__all__ = [
    "BootstrapDecision",
    "ServerInfo",
    "bootstrap_decision",
    "parse_server",
    "reconcile_plan",
    "server_tags",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerInfo:
    name: str  # gossip name, "<node>.<region>"
    id: str
    region: str
    datacenter: str
    raft_addr: str
    http_addr: str
    expect: int
    status: MemberStatus
    build: str


def server_tags(
    *,
    node_id: str,
    region: str,
    datacenter: str,
    raft_addr: str,
    http_addr: str,
    build: str,
    expect: int,
) -> dict[str, str]:
    host, _, port = raft_addr.rpartition(":")
    tags = {
        "role": "nomad",
        "region": region,
        "dc": datacenter,
        "id": node_id,
        "build": build,
        "vsn": "1",
        "raft_vsn": "3",
        "rpc_addr": host,
        "port": port,
        "raft_addr": raft_addr,
        "http_addr": http_addr,
        "expect": str(expect),
    }
    if expect == 1:
        tags["bootstrap"] = "1"
    return tags


def parse_server(member: Member) -> ServerInfo | None:
    t = member.tags
    if t.get("role") != "nomad" or "raft_addr" not in t:
        return None
    try:
        expect = int(t.get("expect", "0"))
    except ValueError:
        expect = 0
    return ServerInfo(
        name=member.name,
        id=t.get("id", ""),
        region=t.get("region", ""),
        datacenter=t.get("dc", ""),
        raft_addr=t["raft_addr"],
        http_addr=t.get("http_addr", ""),
        expect=expect,
        status=member.status,
        build=t.get("build", ""),
    )


def region_servers(members: Iterable[Member], region: str) -> list[ServerInfo]:
    out = []
    for m in members:
        s = parse_server(m)
        if s is not None and s.region == region:
            out.append(s)
    return sorted(out, key=lambda s: s.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapDecision:
    """``start_with`` is the full voter list to start Raft with, or None to keep waiting."""

    start_with: tuple[str, ...] | None
    reason: str


def bootstrap_decision(
    *,
    self_raft: str,
    expect: int,
    alive: Sequence[ServerInfo],
    peer_sets: dict[str, list[str]],
) -> BootstrapDecision:
    """Decide whether to start Raft now.

    ``alive`` are the alive servers of our region (ourselves included); ``peer_sets`` maps the
    raft address of each other server that answered ``Status.Peers`` to its peer list (empty
    when it has not started Raft).
    """
    existing = [peers for peers in peer_sets.values() if peers]
    if existing:
        for peers in existing:
            if self_raft in peers:
                return BootstrapDecision(start_with=tuple(sorted(peers)), reason="added by leader")
        return BootstrapDecision(start_with=None, reason="existing cluster, waiting to be added")
    if expect <= 0:
        return BootstrapDecision(start_with=None, reason="bootstrap_expect unset, waiting")
    others = [s for s in alive if s.expect not in (0, expect)]
    if others:
        names = ",".join(s.name for s in others)
        return BootstrapDecision(
            start_with=None, reason=f"servers with a different bootstrap_expect: {names}"
        )
    if len(alive) < expect:
        return BootstrapDecision(
            start_with=None, reason=f"waiting for servers have={len(alive)} expect={expect}"
        )
    asked = {s.raft_addr for s in alive if s.raft_addr != self_raft}
    if not asked <= set(peer_sets):
        return BootstrapDecision(start_with=None, reason="waiting for every server to answer")
    return BootstrapDecision(
        start_with=tuple(sorted(s.raft_addr for s in alive)), reason="expected servers found"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcilePlan:
    add: tuple[str, ...]
    remove: tuple[str, ...]
    refused: tuple[str, ...] = ()  # names of alive servers in bootstrap mode: never added


def reconcile_plan(
    *,
    self_raft: str,
    servers: Sequence[ServerInfo],
    raft_peers: Iterable[str],
    pruned: Iterable[str] = (),
) -> ReconcilePlan:
    peers = set(raft_peers)
    missing = [s for s in servers if s.status == MemberStatus.ALIVE and s.raft_addr not in peers]
    # Nomad's addRaftPeer: a server in bootstrap mode (bootstrap_expect = 1) runs its own
    # single-server cluster; adding it would make ours wait for a quorum it never gives.
    refused = [s.name for s in missing if s.expect == 1]
    add = [s.raft_addr for s in missing if s.expect != 1]
    gone = {s.raft_addr for s in servers if s.status == MemberStatus.LEFT} | set(pruned)
    alive = {s.raft_addr for s in servers if s.status == MemberStatus.ALIVE}
    remove = [a for a in sorted(gone) if a in peers and a != self_raft and a not in alive]
    return ReconcilePlan(add=tuple(sorted(add)), remove=tuple(remove), refused=tuple(refused))

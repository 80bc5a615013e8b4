"""``serf_peers.json``: the gossip addresses of the other servers, so a restarted server rejoins
them by itself (Nomad's ``serf/peers.json``, Serf's snapshot). Not kept in ``-dev`` or without a
data dir; removed after a graceful leave unless ``rejoin_after_leave`` (Nomad: a server that
left does not rejoin its old peers by itself).

The file is read once, before gossip starts (:meth:`SerfPeers.known`): gossip's first event,
this server's own join, rewrites it, and would leave only the few members a fresh start knows.
Addresses read from it are kept until the member table holds their member: a server restarted
while its peers are down does not forget them (as Serf's snapshot keeps the members it saw
join until it sees them fail or leave)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path

from nomadd.gossip import Member, MemberStatus

__all__ = ["SerfPeers"]

_BELIEVED_UP = (MemberStatus.ALIVE, MemberStatus.SUSPECT)  # a suspect member may still refute


class SerfPeers:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._unseen: set[str] = set()  # read from the file, their members not in the table yet

    def remember(self, me: str, members: Iterable[Member]) -> None:
        """Record the members other than ``me`` believed up, and the addresses read at start
        whose members the table does not hold yet (best effort)."""
        if self.path is None:
            return
        members = list(members)
        self._unseen -= {f"{m.addr}:{m.port}" for m in members}
        up = {f"{m.addr}:{m.port}" for m in members if m.name != me and m.status in _BELIEVED_UP}
        with contextlib.suppress(OSError):
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(sorted(up | self._unseen)))
            tmp.replace(self.path)

    def known(self) -> list[str]:
        """The addresses the file holds (read before gossip starts: see the module doc)."""
        if self.path is None or not self.path.exists():
            return []
        try:
            addrs = [str(a) for a in json.loads(self.path.read_text())]
        except (OSError, ValueError):
            return []
        self._unseen = set(addrs)
        return addrs

    def forget(self) -> None:
        self._unseen = set()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

"""``serf_peers.json``: the gossip addresses of the other servers, so a restarted server rejoins
them by itself (Nomad's ``serf/peers.json``). Not kept in ``-dev`` or without a data dir; removed
after a graceful leave unless ``rejoin_after_leave`` (Nomad: a server that left does not rejoin
its old peers by itself)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path

from nomadd.gossip import Member, MemberStatus

__all__ = ["SerfPeers"]


class SerfPeers:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def remember(self, me: str, members: Iterable[Member]) -> None:
        """Record the alive members other than ``me`` (best effort)."""
        if self.path is None:
            return
        addrs = sorted(
            f"{m.addr}:{m.port}" for m in members if m.name != me and m.status == MemberStatus.ALIVE
        )
        with contextlib.suppress(OSError):
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(addrs))
            tmp.replace(self.path)

    def known(self) -> list[str]:
        if self.path is None or not self.path.exists():
            return []
        try:
            return [str(a) for a in json.loads(self.path.read_text())]
        except (OSError, ValueError):
            return []

    def forget(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

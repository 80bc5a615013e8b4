"""``/v1/operator/raft/*`` (Nomad's api/operator.go)."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client

__all__ = ["Operator"]


class Operator:
    def __init__(self, client: Client) -> None:
        self._c = client

    def raft_configuration(self, stale: bool = False) -> dict[str, Any]:
        """``{Index, Servers: [{ID, Node, Address, Leader, Voter, RaftProtocol}]}``."""
        value, _ = self._c.get("/v1/operator/raft/configuration", {"stale": True} if stale else {})
        return cast(dict[str, Any], value or {})

    def raft_remove_peer_by_id(self, peer_id: str) -> None:
        self._c.delete("/v1/operator/raft/peer", {"id": peer_id})

    def raft_remove_peer_by_address(self, address: str) -> None:
        self._c.delete("/v1/operator/raft/peer", {"address": address})

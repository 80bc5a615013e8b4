"""``Status.*`` RPCs (Nomad's status_endpoint.go): leader, peers, ping, members, regions.

All ``local``: answered by the server that receives them, from its own Raft and gossip view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nomadd.rpc import RPCRegistry
    from nomadd.server.server import Server

__all__ = ["register"]


def register(server: Server, registry: RPCRegistry) -> None:
    async def leader(args: dict[str, Any]) -> str:
        return server.raft.leader() or ""

    async def peers(args: dict[str, Any]) -> list[str]:
        return server.raft.peers()

    async def ping(args: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def members(args: dict[str, Any]) -> dict[str, Any]:
        from nomadd.server.server import member_to_api

        cfg = server.config
        gossip = server.gossip
        return {
            "ServerName": f"{cfg.name}.{cfg.region}",
            "ServerRegion": cfg.region,
            "ServerDC": cfg.datacenter,
            "Members": [member_to_api(m) for m in (gossip.members() if gossip else [])],
        }

    async def regions(args: dict[str, Any]) -> list[str]:
        found = {server.config.region}
        if server.gossip is not None:
            found |= {
                m.tags["region"]
                for m in server.gossip.members()
                if m.tags.get("role") == "nomad" and m.tags.get("region")
            }
        return sorted(found)

    registry.register_legacy("Status.Leader", leader, kind="local")
    registry.register_legacy("Status.Peers", peers, kind="local")
    registry.register_legacy("Status.Ping", ping, kind="local")
    registry.register_legacy("Status.Members", members, kind="local")
    registry.register_legacy("Status.Regions", regions, kind="local")

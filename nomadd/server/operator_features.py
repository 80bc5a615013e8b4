"""The operator features a server builds from its context: snapshot save/restore (and the
restore janitor), scheduled snapshots, and autopilot (docs/configuration.md ``[autopilot]``,
``[server.snapshot]``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from nomadd.rpc import RPCClient, RPCRegistry
from nomadd.rpc.auth import server_caller
from nomadd.server.autopilot import STATS_TIMEOUT_S, Autopilot
from nomadd.server.context import ServerContext
from nomadd.server.fsm.snapshot import SnapshotRestorer
from nomadd.server.leader import LeaderComponent
from nomadd.server.snapshot_endpoint import RestoreJanitor, SnapshotEndpoint
from nomadd.server.snapshot_schedule import SnapshotSchedule
from nomadd.structs.requests.autopilot import AUTOPILOT_SERVER_STATS, ServerStatsReply, ServerStatsRequest

__all__ = ["build_operator_features"]


def build_operator_features(
    ctx: ServerContext,
    registry: RPCRegistry,
    add_leader_component: Callable[[LeaderComponent], None],
    *,
    restorer: SnapshotRestorer,
    on_restored: Callable[[], None],
    leader_http: Callable[[], Awaitable[str]],
    rpc_client: RPCClient,
) -> tuple[Autopilot, SnapshotEndpoint]:
    """Register the snapshot and autopilot RPCs and leader components; returns the autopilot
    and the snapshot endpoint (the HTTP edge streams a save it takes here)."""
    c = ctx.config
    snapshots = SnapshotEndpoint(ctx, on_restored=on_restored, restorer=restorer)
    snapshots.forward_saves(leader_http, rpc_client)
    snapshots.register(registry)
    add_leader_component(RestoreJanitor(ctx))
    if c.snapshot_interval > 0 and c.snapshot_path:
        add_leader_component(
            SnapshotSchedule(ctx, Path(c.snapshot_path), c.snapshot_interval, c.snapshot_retain)
        )

    async def stats(http_addr: str) -> ServerStatsReply:
        req = ServerStatsRequest(caller=server_caller())  # signed by this server
        return await rpc_client.call(http_addr, AUTOPILOT_SERVER_STATS, req, timeout=STATS_TIMEOUT_S)

    autopilot = Autopilot(ctx, c.autopilot, stats)
    autopilot.register(registry)
    add_leader_component(autopilot)
    return autopilot, snapshots

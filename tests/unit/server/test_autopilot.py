"""Autopilot: the replicated configuration (check-and-set), the API JSON, the dead-server rule."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomadd.agent.http.autopilot_endpoint import config_from_api, config_to_api
from nomadd.server.autopilot import Autopilot, removable_peer
from nomadd.server.fsm.autopilot import get_config
from nomadd.structs.errors import ValidationError
from nomadd.structs.requests.autopilot import (
    AUTOPILOT_GET_CONFIG,
    AUTOPILOT_SET_CONFIG,
    AutopilotConfig,
    AutopilotGetConfigRequest,
    AutopilotSetConfigRequest,
    ServerStatsReply,
)
from tests.unit.server.fakes import FakeServer


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _no_stats(addr: str) -> ServerStatsReply:
    raise OSError("unreachable")


def _server() -> FakeServer:
    server = FakeServer()
    Autopilot(server.ctx, AutopilotConfig(max_trailing_logs=99), _no_stats).register(server.registry)
    return server


def test_config_defaults_set_and_check_and_set() -> None:
    async def main() -> None:
        server = _server()
        got = await server.rpc(AUTOPILOT_GET_CONFIG, AutopilotGetConfigRequest())
        assert got.config.max_trailing_logs == 99 and got.config.modify_index == 0  # agent's block
        new = AutopilotConfig(cleanup_dead_servers=False, last_contact_threshold_s=0.5)
        first = await server.rpc(AUTOPILOT_SET_CONFIG, AutopilotSetConfigRequest(config=new, cas=True))
        assert first.updated
        stored = get_config(server.store.snapshot())
        assert stored is not None and stored.modify_index == first.meta.index == stored.create_index
        stale = await server.rpc(AUTOPILOT_SET_CONFIG, AutopilotSetConfigRequest(config=new, cas=True))
        assert not stale.updated  # cas=0 means "only if none is stored"
        ok = AutopilotSetConfigRequest(config=AutopilotConfig(), cas=True, cas_index=stored.modify_index)
        assert (await server.rpc(AUTOPILOT_SET_CONFIG, ok)).updated
        assert (
            await server.rpc(AUTOPILOT_GET_CONFIG, AutopilotGetConfigRequest())
        ).config.cleanup_dead_servers
        bad = AutopilotSetConfigRequest(config=AutopilotConfig(last_contact_threshold_s=0))
        with pytest.raises(ValidationError):
            await server.rpc(AUTOPILOT_SET_CONFIG, bad)

    _run(main())


def test_api_json_matches_nomads_shape_and_round_trips() -> None:
    api = config_to_api(AutopilotConfig())
    assert api["LastContactThreshold"] == "200ms" and api["ServerStabilizationTime"] == "10s"
    assert api["MaxTrailingLogs"] == 250 and api["CleanupDeadServers"] is True
    assert config_from_api(api) == AutopilotConfig()
    assert config_from_api({"LastContactThreshold": 1_000_000_000}).last_contact_threshold_s == 1.0
    for bad in ({"LastContactThreshold": "soon"}, {"MaxTrailingLogs": "x"}, {"CleanupDeadServers": "yes"}):
        with pytest.raises(ValidationError):
            config_from_api(bad)


CFG = AutopilotConfig(last_contact_threshold_s=0.2, server_stabilization_time_s=10.0)


def test_dead_server_is_removed_only_past_the_grace_and_with_a_stable_quorum_left() -> None:
    peers = ["a", "b", "c", "d"]
    # c is dead past the grace; a, b stable; the replacement d not yet stable: a+b = 2 of 3 left
    assert removable_peer(peers=peers, dead={"c": 11.0}, stable={"a", "b"}, config=CFG) == "c"
    # not yet past threshold + stabilization
    assert removable_peer(peers=peers, dead={"c": 5.0}, stable={"a", "b", "d"}, config=CFG) is None
    # removing c would leave too few stable voters (only a of a, b, d)
    assert removable_peer(peers=peers, dead={"c": 11.0}, stable={"a"}, config=CFG) is None
    # more failed voters than (n - 1) / 2: never shrink a cluster that lost its majority
    assert (
        removable_peer(peers=["a", "b", "c"], dead={"b": 60.0, "c": 60.0}, stable={"a"}, config=CFG) is None
    )
    # min_quorum = 3: the dead server goes only once a replacement is stable
    cfg = AutopilotConfig(min_quorum=3)
    assert removable_peer(peers=["a", "b", "c"], dead={"c": 60.0}, stable={"a", "b"}, config=cfg) is None
    assert removable_peer(peers=peers, dead={"c": 60.0}, stable={"a", "b"}, config=cfg) is None
    assert removable_peer(peers=peers, dead={"c": 60.0}, stable={"a", "b", "d"}, config=cfg) == "c"

"""Server heartbeat TTLs against Nomad's documented table, and the leader-only timers."""

from __future__ import annotations

import asyncio
import random

import pytest

from nomadd.server.heartbeat import HeartbeatTimers, TTLSettings, heartbeat_ttl, rate_scaled_interval
from nomadd.structs.errors import NoLeaderError


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


# Nomad's documented TTL table (server block defaults: min_heartbeat_ttl 10 s, 50/s, grace 10 s):
# clients -> (client TTL range, server timer range)
NOMAD_TABLE = [
    (10, (10, 20), (20, 30)),
    (100, (10, 20), (20, 30)),
    (1000, (20, 40), (30, 50)),
    (5000, (100, 200), (110, 210)),
    (10000, (200, 400), (210, 410)),
]


@pytest.mark.parametrize(("n", "client", "server"), NOMAD_TABLE)
def test_ttl_matches_nomad_table(n: int, client: tuple[int, int], server: tuple[int, int]) -> None:
    low = heartbeat_ttl(n, 10.0, 50.0, _Fixed(0.0))
    high = heartbeat_ttl(n, 10.0, 50.0, _Fixed(0.999999))
    assert low == pytest.approx(client[0])
    assert high == pytest.approx(client[1], rel=1e-5)
    assert high < client[1]
    assert low + 10.0 == pytest.approx(server[0])
    assert high + 10.0 == pytest.approx(server[1], rel=1e-5)
    rng = random.Random(7)
    for _ in range(200):
        ttl = heartbeat_ttl(n, 10.0, 50.0, rng)
        assert client[0] <= ttl < client[1]


def test_rate_scaled_interval_edges() -> None:
    assert rate_scaled_interval(50.0, 10.0, 0) == 10.0
    assert rate_scaled_interval(50.0, 10.0, 501) == pytest.approx(10.02)
    assert rate_scaled_interval(1.0 / 86400.0, 10.0, 10**9) == 10.0  # too low a rate: minimum
    assert rate_scaled_interval(50.0, 2.0, 100) == 2.0


def _settings(**kw: float) -> TTLSettings:
    values = {"min_ttl": 0.05, "rate": 50.0, "grace": 0.05, "failover_ttl": 0.3, **kw}
    return TTLSettings(**values)


@pytest.mark.slow
def test_timers_expire_and_reset() -> None:
    async def main() -> None:
        expired: list[str] = []

        async def invalidate(node_id: str) -> None:
            expired.append(node_id)

        timers = HeartbeatTimers(settings=_settings, live_nodes=lambda: [], invalidate=invalidate)
        with pytest.raises(NoLeaderError):
            timers.reset("a")
        timers.set_enabled(True)
        ttl = timers.reset("a")
        assert 0.05 <= ttl < 0.1
        timers.reset("b")
        assert timers.active() == 2
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while loop.time() < deadline and "b" not in expired:  # keep "a" alive, let "b" expire
            timers.reset("a")
            await asyncio.sleep(0.02)
        assert expired == ["b"]
        timers.clear("a")
        await asyncio.sleep(0.25)
        assert expired == ["b"]
        assert timers.active() == 0
        await timers.shutdown()

    asyncio.run(main())


@pytest.mark.slow
def test_failover_ttl_on_election_and_clear_on_loss() -> None:
    async def main() -> None:
        expired: list[str] = []

        async def invalidate(node_id: str) -> None:
            expired.append(node_id)

        timers = HeartbeatTimers(settings=_settings, live_nodes=lambda: ["x", "y"], invalidate=invalidate)
        timers.set_enabled(True)
        assert timers.active() == 2
        await asyncio.sleep(0.15)  # longer than ttl + grace (<= 0.15), shorter than failover 0.3
        assert expired == []
        timers.set_enabled(False)
        assert timers.active() == 0
        await asyncio.sleep(0.3)
        assert expired == []  # leadership lost: nothing is invalidated
        timers.set_enabled(True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while loop.time() < deadline and len(expired) < 2:
            await asyncio.sleep(0.02)
        assert sorted(expired) == ["x", "y"]
        await timers.shutdown()

    asyncio.run(main())

"""The Gossip object's lifecycle on loopback: binding, idempotent shutdown, misuse."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from nomadd.gossip import Gossip, GossipConfig, MemberEvent, MemberStatus
from nomadd.structs.errors import ConfigError, NomaddError


def cfg(name: str = "a.global", **overrides: object) -> GossipConfig:
    settings: dict[str, object] = {"bind_addr": "127.0.0.1", "bind_port": 0, **overrides}
    return GossipConfig(name=name, **settings)  # type: ignore[arg-type]


def test_binds_udp_and_tcp_on_the_same_port_and_shuts_down_twice() -> None:
    events: list[MemberEvent] = []

    async def main() -> None:
        pool = Gossip(cfg(tags={"role": "nomad"}), on_event=events.append)
        await pool.start()
        try:
            assert pool.port > 0
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s, pytest.raises(OSError, match="in use"):
                    s.bind(("127.0.0.1", pool.port))
            me = pool.local_member()
            assert (me.name, me.addr, me.port, me.status) == (
                "a.global",
                "127.0.0.1",
                pool.port,
                MemberStatus.ALIVE,
            )
            assert pool.members() == [me]
            await asyncio.sleep(0)  # events are delivered on the loop, not inline
            assert [(e.kind.value, e.member.name) for e in events] == [("join", "a.global")]
        finally:
            await pool.shutdown()
            await pool.shutdown()

    asyncio.run(main())


def test_advertise_overrides_are_used() -> None:
    async def main() -> None:
        pool = Gossip(cfg(advertise_addr="10.1.2.3", advertise_port=5000))
        await pool.start()
        try:
            me = pool.local_member()
            assert (me.addr, me.port) == ("10.1.2.3", 5000)
        finally:
            await pool.shutdown()

    asyncio.run(main())


def test_busy_fixed_port_is_a_config_error() -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind(("127.0.0.1", 0))
            pool = Gossip(cfg(bind_port=busy.getsockname()[1]))
            with pytest.raises(ConfigError, match="bind"):
                await pool.start()

    asyncio.run(main())


def test_use_before_start_is_an_error_but_reading_members_finds_none() -> None:
    pool = Gossip(cfg())
    with pytest.raises(NomaddError, match="not started"):
        pool.local_member()
    # the HTTP API (/v1/agent/self, /v1/agent/members) answers before gossip has started
    assert pool.members() == []


def test_failing_event_handler_does_not_break_the_pool(caplog: pytest.LogCaptureFixture) -> None:
    def boom(event: MemberEvent) -> None:
        raise RuntimeError("handler bug")

    async def main() -> None:
        pool = Gossip(cfg(), on_event=boom)
        await pool.start()
        try:
            await asyncio.sleep(0.01)
            pool.update_tags({"x": "1"})
            await asyncio.sleep(0.01)
            assert pool.local_member().tags == {"x": "1"}
        finally:
            await pool.shutdown()

    with caplog.at_level(logging.ERROR, logger="nomadd.gossip"):
        asyncio.run(main())
    failures = [r for r in caplog.records if r.getMessage().startswith("gossip event handler")]
    assert len(failures) == 2  # our own join at start, then the tag update


def test_leave_alone_finishes_quickly() -> None:
    async def main() -> None:
        pool = Gossip(cfg(leave_propagate_delay=5.0, gossip_interval=0.01))
        await pool.start()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await pool.leave(timeout=1.0)
        assert loop.time() - start < 0.5  # nobody to tell: no propagate delay
        assert pool.local_member().status is MemberStatus.LEFT

    asyncio.run(main())

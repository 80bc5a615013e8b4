"""FakeGossip: same API as Gossip, same state machine, driven by the test."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from nomadd.gossip import (
    EventKind,
    FakeGossip,
    Gossip,
    GossipConfig,
    GossipPool,
    MemberEvent,
    MemberStatus,
)
from nomadd.structs.errors import NomaddError


def test_public_api_matches_the_real_pool() -> None:
    checked = []
    for name, member in inspect.getmembers(GossipPool):
        if name.startswith("_") or not callable(member):
            continue
        checked.append(name)
        real = inspect.signature(getattr(Gossip, name))
        fake = inspect.signature(getattr(FakeGossip, name))
        assert real == fake == inspect.signature(member), name
        assert inspect.iscoroutinefunction(getattr(Gossip, name)) == inspect.iscoroutinefunction(
            getattr(FakeGossip, name)
        )
    assert len(checked) == 8, checked
    pools: list[GossipPool] = [  # and mypy checks both satisfy the Protocol
        FakeGossip(GossipConfig(name="a.global")),
        Gossip(GossipConfig(name="a.global")),
    ]
    assert len(pools) == 2


def test_membership_changes_emit_the_real_events() -> None:
    events: list[MemberEvent] = []

    async def main() -> None:
        pool = FakeGossip(GossipConfig(name="s1.global", tags={"role": "nomad"}), on_event=events.append)
        await pool.start()
        pool.add("s2.global", addr="10.0.0.2", tags={"role": "nomad"})
        pool.add("s3.global", addr="10.0.0.3")
        pool.fail("s2.global")
        pool.leave_member("s3.global")
        await asyncio.sleep(0)  # delivered on the loop
        statuses = {m.name: m.status for m in pool.members()}
        assert statuses == {
            "s1.global": MemberStatus.ALIVE,
            "s2.global": MemberStatus.FAILED,
            "s3.global": MemberStatus.LEFT,
        }
        back = pool.add("s2.global", addr="10.0.0.2")
        assert (back.status, back.incarnation) == (MemberStatus.ALIVE, 1)
        assert pool.reap("s3.global")
        assert not pool.reap("s2.global")  # alive members are not reaped
        await asyncio.sleep(0)

    asyncio.run(main())
    assert [(e.kind, e.member.name) for e in events] == [
        (EventKind.JOIN, "s1.global"),
        (EventKind.JOIN, "s2.global"),
        (EventKind.JOIN, "s3.global"),
        (EventKind.FAILED, "s2.global"),
        (EventKind.LEAVE, "s3.global"),
        (EventKind.JOIN, "s2.global"),
        (EventKind.REAP, "s3.global"),
    ]


def test_join_force_leave_and_leave() -> None:
    async def main() -> None:
        pool = FakeGossip(GossipConfig(name="s1.global"))
        await pool.start()
        other = FakeGossip(GossipConfig(name="s2.global", bind_addr="10.0.0.2"))
        await other.start()
        pool.joinable["10.0.0.2:4648"] = [other.local_member()]
        assert await pool.join(["10.0.0.2", "10.0.0.3:4648", "bad:port"]) == 1
        assert pool.joined == ["10.0.0.2", "10.0.0.3:4648", "bad:port"]
        assert [m.name for m in pool.members()] == ["s1.global", "s2.global"]

        refused = await pool.force_leave("s2.global")
        assert not refused.changed
        pool.fail("s2.global")
        done = await pool.force_leave("s2.global", prune=True)
        assert (done.previous, done.status, done.changed) == (MemberStatus.FAILED, None, True)
        assert [m.name for m in pool.members()] == ["s1.global"]

        await pool.leave()
        assert pool.stopped
        assert pool.local_member().status is MemberStatus.LEFT

    asyncio.run(main())


def test_unknown_member_is_an_error_for_test_controls() -> None:
    pool = FakeGossip(GossipConfig(name="s1.global"))
    asyncio.run(pool.start())
    with pytest.raises(NomaddError, match="no member named"):
        pool.fail("nobody.global")

"""Several Gossip pools in one process on 127.0.0.1 (ephemeral ports), with short timers."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager

import msgpack  # type: ignore[import-untyped]
import pytest

from nomadd.gossip import (
    EventKind,
    Gossip,
    GossipConfig,
    MemberEvent,
    MemberStatus,
)
from nomadd.gossip.crypto import Envelope
from nomadd.gossip.messages import Ping, encode_message, pack_compound

pytestmark = pytest.mark.slow

LOCALHOST = "127.0.0.1"
FAST: dict[str, object] = {
    "bind_addr": LOCALHOST,
    "bind_port": 0,
    "probe_interval": 0.2,
    "probe_timeout": 0.1,
    "suspicion_mult": 3,
    "gossip_interval": 0.03,
    "push_pull_interval": 0.5,
    "reconnect_interval": 0.3,
    "leave_propagate_delay": 0.1,
    "tcp_timeout": 1.0,
}
KEY = bytes(range(16))


def config(name: str, **overrides: object) -> GossipConfig:
    settings = {**FAST, "tags": {"role": "nomad", "region": "global"}, **overrides}
    return GossipConfig(name=name, **settings)  # type: ignore[arg-type]


async def wait_for(pred: Callable[[], bool], what: str, timeout: float = 5.0) -> float:
    """Poll ``pred`` until true; returns the seconds it took."""
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def status_of(pool: Gossip, name: str) -> MemberStatus | None:
    for m in pool.members():
        if m.name == name:
            return m.status
    return None


def addr(pool: Gossip) -> str:
    return f"{LOCALHOST}:{pool.port}"


class Recorder:
    def __init__(self) -> None:
        self.events: list[MemberEvent] = []

    def __call__(self, event: MemberEvent) -> None:
        self.events.append(event)

    def seen(self, kind: EventKind, name: str) -> bool:
        return any(e.kind is kind and e.member.name == name for e in self.events)


@asynccontextmanager
async def pools(
    count: int, *, join: bool = True, **overrides: object
) -> AsyncIterator[tuple[list[Gossip], list[Recorder]]]:
    recorders = [Recorder() for _ in range(count)]
    started: list[Gossip] = []
    try:
        for i in range(count):
            pool = Gossip(config(f"n{i}.global", **overrides), on_event=recorders[i])
            await pool.start()
            started.append(pool)
        if join:
            for i in range(1, count):  # a chain: everyone learns the rest by dissemination
                assert await started[i].join([addr(started[i - 1])]) == 1
        yield started, recorders
    finally:
        for pool in started:
            await pool.shutdown()


def all_alive(group: list[Gossip], names: list[str]) -> bool:
    return all(
        sorted((m.name, m.status) for m in p.members()) == sorted((n, MemberStatus.ALIVE) for n in names)
        for p in group
    )


def run(main: Callable[[], Coroutine[None, None, None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(30):  # a hung test fails instead of blocking the suite
            await main()

    asyncio.run(bounded())


def test_five_members_converge_with_tags_and_events() -> None:
    async def main() -> None:
        async with pools(5) as (group, recs):
            names = [f"n{i}.global" for i in range(5)]
            await wait_for(lambda: all_alive(group, names), "5 members alive everywhere")
            member = next(m for m in group[4].members() if m.name == "n0.global")
            assert member.port == group[0].port
            assert member.tags == {"role": "nomad", "region": "global"}
            await wait_for(lambda: all(r.seen(EventKind.JOIN, n) for r in recs for n in names), "join events")
            group[2].update_tags({"role": "nomad", "region": "global", "build": "2"})
            await wait_for(
                lambda: all(
                    m.tags.get("build") == "2" for p in group for m in p.members() if m.name == "n2.global"
                ),
                "tag update everywhere",
            )
            assert recs[0].seen(EventKind.UPDATE, "n2.global")
            assert group[2].local_member().incarnation >= 1

    run(main)


def test_killed_member_becomes_failed_then_rejoins_with_higher_incarnation() -> None:
    async def main() -> None:
        async with pools(3) as (group, recs):
            names = ["n0.global", "n1.global", "n2.global"]
            await wait_for(lambda: all_alive(group, names), "3 alive")
            await group[2].shutdown()  # no leave: a crash as far as the others can tell
            took = await wait_for(
                lambda: all(status_of(p, "n2.global") is MemberStatus.FAILED for p in group[:2]),
                "n2 failed on n0 and n1",
            )
            assert took < 5.0
            assert recs[0].seen(EventKind.FAILED, "n2.global")
            old_inc = next(m.incarnation for m in group[0].members() if m.name == "n2.global")

            reborn = Gossip(config("n2.global"))  # same name, new port, incarnation 0
            await reborn.start()
            try:
                assert await reborn.join([addr(group[0])]) == 1
                await wait_for(
                    lambda: all(status_of(p, "n2.global") is MemberStatus.ALIVE for p in group[:2]),
                    "n2 alive again",
                )
                again = next(m for m in group[1].members() if m.name == "n2.global")
                assert again.port == reborn.port
                assert again.incarnation > old_inc
                await wait_for(
                    lambda: (
                        sum(e.kind is EventKind.JOIN and e.member.name == "n2.global" for e in recs[0].events)
                        == 2
                    ),
                    "rejoin event",
                )
            finally:
                await reborn.shutdown()

    run(main)


def test_graceful_leave_is_seen_as_left_then_reaped() -> None:
    async def main() -> None:
        async with pools(3, tombstone_timeout=1.0) as (group, recs):
            names = ["n0.global", "n1.global", "n2.global"]
            await wait_for(lambda: all_alive(group, names), "3 alive")
            await group[1].leave(timeout=2.0)
            assert group[1].local_member().status is MemberStatus.LEFT
            # Events are a durable record: no race with the 1 s tombstone.
            await wait_for(
                lambda: all(r.seen(EventKind.REAP, "n1.global") for r in recs[::2]),
                "n1 left, then reaped on n0 and n2",
            )
            for rec in recs[::2]:
                about_n1 = [e.kind for e in rec.events if e.member.name == "n1.global"]
                assert about_n1[-2:] == [EventKind.LEAVE, EventKind.REAP]  # not "failed"
                left = next(e.member for e in rec.events if e.kind is EventKind.LEAVE)
                assert left.status is MemberStatus.LEFT
            assert all(status_of(p, "n1.global") is None for p in group[::2])

    run(main)


def test_force_leave_failed_member_then_prune() -> None:
    async def main() -> None:
        async with pools(3) as (group, recs):
            names = ["n0.global", "n1.global", "n2.global"]
            await wait_for(lambda: all_alive(group, names), "3 alive")

            alive = await group[0].force_leave("n1.global")
            assert not alive.changed
            assert alive.status in (MemberStatus.ALIVE, MemberStatus.SUSPECT)  # suspect: CI load
            assert "only failed members" in alive.message
            assert status_of(group[0], "n1.global") in (MemberStatus.ALIVE, MemberStatus.SUSPECT)
            unknown = await group[0].force_leave("nobody.global")
            assert unknown.previous is None
            assert not unknown.changed

            await group[2].shutdown()
            await wait_for(
                lambda: all(status_of(p, "n2.global") is MemberStatus.FAILED for p in group[:2]),
                "n2 failed",
            )
            result = await group[0].force_leave("n2.global")
            assert result.changed
            assert (result.previous, result.status) == (MemberStatus.FAILED, MemberStatus.LEFT)
            await wait_for(lambda: status_of(group[1], "n2.global") is MemberStatus.LEFT, "left")
            assert recs[1].seen(EventKind.LEAVE, "n2.global")

            pruned = await group[1].force_leave("n2.global", prune=True)
            assert pruned.changed
            assert pruned.status is None
            await wait_for(lambda: all(status_of(p, "n2.global") is None for p in group[:2]), "pruned")
            assert recs[0].seen(EventKind.REAP, "n2.global")

    run(main)


def test_wrong_key_or_missing_key_never_joins(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with pools(2, encrypt_key=KEY) as (group, _):
            await wait_for(lambda: all_alive(group, ["n0.global", "n1.global"]), "keyed pair")
            strangers = [
                Gossip(config("wrong.global", encrypt_key=bytes(range(1, 17)))),
                Gossip(config("plain.global")),
            ]
            try:
                for s in strangers:
                    await s.start()
                for s in strangers:
                    assert await s.join([addr(group[0])]) == 0
                    assert await group[0].join([addr(s)]) == 0
                # Probes and gossip from the strangers keep arriving as UDP; give them time.
                await asyncio.sleep(0.5)
                for s in strangers:
                    assert [m.name for m in s.members()] == [s.local_member().name]
                assert {m.name for m in group[0].members()} == {"n0.global", "n1.global"}
            finally:
                for s in strangers:
                    await s.shutdown()

    with caplog.at_level(logging.WARNING, logger="nomadd.gossip"):
        run(main)
    dropped = [r.getMessage() for r in caplog.records if "gossip dropped" in r.getMessage()]
    assert any("decryption failed" in m for m in dropped)
    assert any("unencrypted" in m or "no key" in m for m in dropped)


def test_join_failures_are_bounded_and_counted() -> None:
    async def main() -> None:
        async with pools(2, join=False) as (group, _):
            with socket.socket() as probe:  # a port with nobody listening
                probe.bind((LOCALHOST, 0))
                closed = f"{LOCALHOST}:{probe.getsockname()[1]}"
            start = time.monotonic()
            joined = await group[0].join([closed, "bad:port", addr(group[1])])
            assert joined == 1
            assert time.monotonic() - start < 2.0

    run(main)


def test_garbage_on_udp_and_tcp_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with pools(2, encrypt_key=KEY) as (group, _):
            await wait_for(lambda: all_alive(group, ["n0.global", "n1.global"]), "pair")
            target = (LOCALHOST, group[0].port)
            rng = random.Random(1)
            sealed = Envelope(KEY)
            udp_garbage = [
                b"",
                b"\x00",
                rng.randbytes(300),
                os.urandom(60_000),
                sealed.seal(b"\xc1not msgpack", b"udp"),
                sealed.seal(msgpack.packb({"t": "ping"}), b"udp"),
                sealed.seal(pack_compound([encode_message(Ping(seq=1, target="", source="x"))])[:-2], b"udp"),
                sealed.seal(b"\xdd\xff\xff\xff\xff", b"udp"),  # array32 claiming 4G items
                Envelope(None).seal(b"\x90", b"udp"),
            ]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                for packet in udp_garbage:
                    udp.sendto(packet, target)

            async def tcp_send(data: bytes, *, hold: bool = False) -> None:
                reader, writer = await asyncio.open_connection(*target)
                try:
                    writer.write(data)
                    await writer.drain()
                    if not hold:
                        writer.write_eof()
                    async with asyncio.timeout(3):  # the server must hang up on its own
                        assert await reader.read() == b""
                finally:
                    writer.close()
                    await writer.wait_closed()

            frame = struct.Struct("!I")
            await tcp_send(rng.randbytes(100))
            await tcp_send(frame.pack(0xFFFFFFFF) + b"x")
            await tcp_send(frame.pack(10) + b"abc")
            await tcp_send(frame.pack(20) + b"0123", hold=True)  # stalls: read timeout
            junk = sealed.seal(msgpack.packb({"t": 9, "j": "yes"}), b"tcp")
            await tcp_send(frame.pack(len(junk)) + junk)
            ping = sealed.seal(msgpack.packb([{"t": 1}]), b"tcp")
            await tcp_send(frame.pack(len(ping)) + ping)

            # Still healthy: the pair stays alive and a newcomer can join.
            assert all_alive(group, ["n0.global", "n1.global"])
            newcomer = Gossip(config("n9.global", encrypt_key=KEY))
            await newcomer.start()
            try:
                assert await newcomer.join([addr(group[0])]) == 1
                await wait_for(
                    lambda: all_alive([*group, newcomer], ["n0.global", "n1.global", "n9.global"]),
                    "newcomer converged",
                )
            finally:
                await newcomer.shutdown()

    with caplog.at_level(logging.WARNING, logger="nomadd.gossip"):
        run(main)
    messages = [r.getMessage() for r in caplog.records]
    assert any("gossip dropped udp packet" in m for m in messages)
    assert any("gossip dropped tcp input" in m for m in messages)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)

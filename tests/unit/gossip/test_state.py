"""The membership state machine: incarnation ordering, suspicion, refutation, leave, reaping."""

from __future__ import annotations

import math

import pytest

from nomadd.gossip.member import GossipConfig, MemberEvent, MemberStatus
from nomadd.gossip.messages import (
    Alive,
    Dead,
    ForceLeave,
    Intent,
    NodeState,
    Suspect,
    decode_message,
)
from nomadd.gossip.state import Liveness, MemberTable

LOCAL = "local.global"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_table(**overrides: object) -> tuple[MemberTable, list[MemberEvent], FakeClock]:
    overrides.setdefault("tags", {"role": "nomad"})
    cfg = GossipConfig(
        name=LOCAL,
        bind_addr="127.0.0.1",
        bind_port=0,
        probe_interval=1.0,
        suspicion_mult=4,
        reconnect_timeout=100.0,
        tombstone_timeout=50.0,
        **overrides,  # type: ignore[arg-type]
    )
    events: list[MemberEvent] = []
    clock = FakeClock()
    table = MemberTable(config=cfg, addr="127.0.0.1", port=4648, emit=events.append, clock=clock)
    return table, events, clock


def alive(name: str, inc: int, **tags: str) -> Alive:
    return Alive(name=name, addr="10.0.0.1", port=4648, inc=inc, tags=tags)


def kinds(events: list[MemberEvent]) -> list[tuple[str, str]]:
    return [(e.kind.value, e.member.name) for e in events]


def status(table: MemberTable, name: str) -> MemberStatus:
    return table.nodes[name].status


def queued(table: MemberTable) -> list[object]:
    return [decode_message(b) for b in table.broadcasts.get(1 << 20, 1000, 3)]


def test_local_member_is_alive_and_announced() -> None:
    table, events, _ = make_table()
    assert kinds(events) == [("join", LOCAL)]
    assert table.local.to_member().tags == {"role": "nomad"}
    assert table.local.status is MemberStatus.ALIVE


def test_alive_adds_member_once_and_ignores_stale_incarnations() -> None:
    table, events, _ = make_table()
    table.handle_alive(alive("a.global", 3, role="nomad"))
    table.handle_alive(alive("a.global", 3, role="other"))
    table.handle_alive(alive("a.global", 2, role="other"))
    assert kinds(events)[1:] == [("join", "a.global")]
    assert table.nodes["a.global"].tags == {"role": "nomad"}
    table.handle_alive(alive("a.global", 4, role="other"))
    assert kinds(events)[2:] == [("update", "a.global")]
    assert table.nodes["a.global"].inc == 4


def test_suspect_then_timeout_marks_failed_with_log_n_scaling() -> None:
    table, events, clock = make_table()
    for i in range(9):
        table.handle_alive(alive(f"n{i}.global", 1))
    # 10 live members: log10(10) = 1 -> 4 * 1 * 1.0 s; 100 would give 8 s.
    assert table.suspicion_timeout() == pytest.approx(4.0)
    table.handle_suspect(Suspect(name="n0.global", inc=1, source="n1.global"))
    assert status(table, "n0.global") is MemberStatus.SUSPECT
    clock.now += 3.9
    table.tick()
    assert status(table, "n0.global") is MemberStatus.SUSPECT
    clock.now += 0.2
    table.tick()
    assert status(table, "n0.global") is MemberStatus.FAILED
    assert kinds(events)[-1] == ("failed", "n0.global")


def test_suspicion_timeout_grows_with_log_of_members() -> None:
    table, _, _ = make_table()
    for i in range(99):
        table.handle_alive(alive(f"n{i}.global", 1))
    assert table.suspicion_timeout() == pytest.approx(4 * math.log10(100))


def test_stale_suspect_is_ignored_and_alive_with_higher_inc_clears_suspicion() -> None:
    table, _, clock = make_table()
    table.handle_alive(alive("a.global", 5))
    table.handle_suspect(Suspect(name="a.global", inc=4, source="x"))
    assert status(table, "a.global") is MemberStatus.ALIVE
    table.handle_suspect(Suspect(name="a.global", inc=5, source="x"))
    assert status(table, "a.global") is MemberStatus.SUSPECT
    table.handle_alive(alive("a.global", 5))  # same incarnation does not refute
    assert status(table, "a.global") is MemberStatus.SUSPECT
    table.handle_alive(alive("a.global", 6))
    assert status(table, "a.global") is MemberStatus.ALIVE
    clock.now += 1000
    table.tick()
    assert status(table, "a.global") is MemberStatus.ALIVE


def test_suspicion_about_self_is_refuted_with_higher_incarnation() -> None:
    table, _, _ = make_table()
    table.broadcasts.clear()
    table.handle_suspect(Suspect(name=LOCAL, inc=0, source="a.global"))
    assert table.local.inc == 1
    assert table.local.status is MemberStatus.ALIVE
    sent = queued(table)
    assert sent == [Alive(name=LOCAL, addr="127.0.0.1", port=4648, inc=1, tags={"role": "nomad"})]
    table.handle_dead(Dead(name=LOCAL, inc=7, source="a.global"))
    assert table.local.inc == 8
    assert table.local.status is MemberStatus.ALIVE


def test_stale_alive_about_self_with_other_address_is_refuted() -> None:
    table, _, _ = make_table()
    table.handle_alive(Alive(name=LOCAL, addr="10.9.9.9", port=1, inc=3, tags={}))
    assert table.local.inc == 4
    assert table.local.addr == "127.0.0.1"
    table.handle_alive(Alive(name=LOCAL, addr="10.9.9.9", port=1, inc=2, tags={}))
    assert table.local.inc == 4


def test_failed_member_comes_back_with_higher_incarnation() -> None:
    table, events, _ = make_table()
    table.handle_alive(alive("a.global", 1))
    table.handle_dead(Dead(name="a.global", inc=1, source="b.global"))
    assert status(table, "a.global") is MemberStatus.FAILED
    table.handle_alive(alive("a.global", 1))
    assert status(table, "a.global") is MemberStatus.FAILED
    table.handle_alive(alive("a.global", 2))
    assert status(table, "a.global") is MemberStatus.ALIVE
    assert kinds(events)[1:] == [("join", "a.global"), ("failed", "a.global"), ("join", "a.global")]


def test_graceful_leave_goes_leaving_then_left() -> None:
    table, events, _ = make_table()
    table.handle_alive(alive("a.global", 2))
    table.handle_intent(Intent(name="a.global", inc=1))  # stale intent: ignored
    assert status(table, "a.global") is MemberStatus.ALIVE
    table.handle_intent(Intent(name="a.global", inc=2))
    assert status(table, "a.global") is MemberStatus.LEAVING
    table.handle_dead(Dead(name="a.global", inc=2, source="a.global"))
    assert status(table, "a.global") is MemberStatus.LEFT
    assert kinds(events)[-1] == ("leave", "a.global")
    table.handle_dead(Dead(name="a.global", inc=2, source="b.global"))
    assert status(table, "a.global") is MemberStatus.LEFT


def test_leaving_member_that_then_fails_counts_as_left() -> None:
    table, events, _ = make_table()
    table.handle_alive(alive("a.global", 1))
    table.handle_intent(Intent(name="a.global", inc=1))
    table.handle_dead(Dead(name="a.global", inc=1, source="b.global"))
    assert status(table, "a.global") is MemberStatus.LEFT
    assert kinds(events)[-1] == ("leave", "a.global")


def test_local_leave_does_not_refute_own_death() -> None:
    table, events, _ = make_table()
    intent = table.start_local_leave()
    assert intent == Intent(name=LOCAL, inc=0)
    assert table.local.status is MemberStatus.LEAVING
    table.handle_suspect(Suspect(name=LOCAL, inc=0, source="a.global"))
    assert table.local.inc == 0
    dead = table.finish_local_leave()
    assert dead == Dead(name=LOCAL, inc=0, source=LOCAL)
    assert status(table, LOCAL) is MemberStatus.LEFT
    assert kinds(events)[-1] == ("leave", LOCAL)


def test_restarted_member_refutes_its_left_tombstone_from_push_pull() -> None:
    table, _, _ = make_table()
    remote = [NodeState(name=LOCAL, addr="127.0.0.1", port=4648, inc=5, tags={}, state="left", leaving=True)]
    table.merge(remote, source="a.global")
    assert table.local.status is MemberStatus.ALIVE
    assert table.local.inc == 6


def test_merge_maps_remote_states() -> None:
    table, events, _ = make_table()

    def st(name: str, state: str, inc: int = 1, leaving: bool = False) -> NodeState:
        return NodeState(
            name=name, addr="10.0.0.2", port=4648, inc=inc, tags={}, state=state, leaving=leaving
        )

    table.handle_alive(alive("d.global", 1))
    table.handle_alive(alive("l.global", 1))
    table.merge(
        [
            st("a.global", "alive"),
            st("s.global", "suspect"),
            st("g.global", "alive", leaving=True),
            st("d.global", "dead"),  # remote "dead" -> local suspicion only
            st("l.global", "left"),
            st("unknown-dead.global", "dead"),  # not learnt: it could not be refuted
        ],
        source="r.global",
    )
    got = {m.name: m.status for m in table.members()}
    assert got == {
        LOCAL: MemberStatus.ALIVE,
        "a.global": MemberStatus.ALIVE,
        "s.global": MemberStatus.SUSPECT,
        "g.global": MemberStatus.LEAVING,
        "d.global": MemberStatus.SUSPECT,
        "l.global": MemberStatus.LEFT,
    }
    assert ("leave", "l.global") in kinds(events)


def test_force_leave_only_affects_failed_members_and_prune_drops() -> None:
    table, events, _ = make_table()
    table.handle_alive(alive("a.global", 1))
    table.handle_alive(alive("f.global", 1))
    table.handle_dead(Dead(name="f.global", inc=1, source="a.global"))
    assert not table.handle_force_leave(ForceLeave(name="a.global", inc=1, prune=False))
    assert status(table, "a.global") is MemberStatus.ALIVE
    assert not table.handle_force_leave(ForceLeave(name=LOCAL, inc=0, prune=True))
    assert table.handle_force_leave(ForceLeave(name="f.global", inc=1, prune=False))
    assert status(table, "f.global") is MemberStatus.LEFT
    assert table.handle_force_leave(ForceLeave(name="f.global", inc=1, prune=True))
    assert "f.global" not in table.nodes
    assert kinds(events)[-2:] == [("leave", "f.global"), ("reap", "f.global")]


def test_failed_and_left_members_are_reaped_after_their_timeouts() -> None:
    table, events, clock = make_table()
    table.handle_alive(alive("f.global", 1))
    table.handle_alive(alive("l.global", 1))
    table.handle_dead(Dead(name="f.global", inc=1, source="x.global"))
    table.handle_dead(Dead(name="l.global", inc=1, source="l.global"))
    clock.now += 49
    table.tick()
    assert set(table.nodes) == {LOCAL, "f.global", "l.global"}
    clock.now += 2  # tombstone_timeout=50
    table.tick()
    assert set(table.nodes) == {LOCAL, "f.global"}
    clock.now += 50  # reconnect_timeout=100
    table.tick()
    assert set(table.nodes) == {LOCAL}
    assert kinds(events)[-2:] == [("reap", "l.global"), ("reap", "f.global")]


def test_update_local_tags_bumps_incarnation_and_disseminates() -> None:
    table, events, _ = make_table()
    table.broadcasts.clear()
    table.update_local_tags({"role": "nomad", "id": "x"})
    assert table.local.inc == 1
    assert queued(table) == [
        Alive(name=LOCAL, addr="127.0.0.1", port=4648, inc=1, tags={"role": "nomad", "id": "x"})
    ]
    assert kinds(events)[-1] == ("update", LOCAL)


def test_updates_are_rebroadcast_and_latest_per_member_wins() -> None:
    table, _, _ = make_table()
    table.broadcasts.clear()
    table.handle_alive(alive("a.global", 1))
    table.handle_suspect(Suspect(name="a.global", inc=1, source="b.global"))
    assert queued(table) == [Suspect(name="a.global", inc=1, source="b.global")]


def test_gossip_targets_include_recent_failures_only() -> None:
    table, _, clock = make_table()
    table.handle_alive(alive("a.global", 1))
    table.handle_alive(alive("f.global", 1))
    table.handle_dead(Dead(name="f.global", inc=1, source="a.global"))
    assert {n.name for n in table.gossip_targets()} == {"a.global", "f.global"}
    clock.now += 31
    assert {n.name for n in table.gossip_targets()} == {"a.global"}
    assert [n.name for n in table.peers(Liveness.DEAD)] == ["f.global"]


def test_push_pull_exchange_revives_a_falsely_failed_member() -> None:
    """The reconnect path: A thinks B failed; B hears it, refutes, and A learns B is alive."""
    a, a_events, _ = make_table()
    b_cfg = GossipConfig(name="b.global", bind_addr="127.0.0.1", bind_port=0)
    b = MemberTable(config=b_cfg, addr="10.0.0.2", port=4648, emit=lambda e: None)
    a.merge(b.snapshot(), source="b.global")
    b.merge(a.snapshot(), source=LOCAL)
    a.handle_dead(Dead(name="b.global", inc=0, source=LOCAL))
    assert status(a, "b.global") is MemberStatus.FAILED

    b.merge(a.snapshot(), source=LOCAL)  # answerer merges first ...
    assert b.local.inc == 1
    a.merge(b.snapshot(), source="b.global")  # ... so its reply already carries the refutation
    assert status(a, "b.global") is MemberStatus.ALIVE
    assert kinds(a_events)[-1] == ("join", "b.global")


def test_members_of_another_region_get_the_wan_suspicion_timeout() -> None:
    table, _, clock = make_table(tags={"role": "nomad", "region": "east"}, remote_tag="region")
    cfg = table._config
    assert cfg.probe_timeout_for({"region": "east"}) == cfg.probe_timeout
    assert cfg.probe_timeout_for({"region": "west"}) == cfg.remote_probe_timeout == 3.0
    table.handle_alive(alive("near.east", 1, region="east"))
    table.handle_alive(alive("far.west", 1, region="west"))
    for name in ("near.east", "far.west"):
        table.handle_suspect(Suspect(name=name, inc=1, source=LOCAL))
    clock.now += 4.1  # past the LAN timeout (4 x 1 s), not the WAN one (6 x 1 s)
    table.tick()
    assert status(table, "near.east") is MemberStatus.FAILED
    assert status(table, "far.west") is MemberStatus.SUSPECT
    clock.now += 2.0
    table.tick()
    assert status(table, "far.west") is MemberStatus.FAILED

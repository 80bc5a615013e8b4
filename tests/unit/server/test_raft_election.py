"""Real pysyncobj members (our RaftNode and transport) ticked by hand: a follower whose timer
ran out while the leader's heartbeats waited unread on its socket keeps its leader, one whose
leader is silent still elects; a stall between two ticks is split into where its time went."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nomadd.server.raft import prevote
from nomadd.server.raft.glue import SLOW_TICK_S, RaftNode
from tests.unit.server.server_helpers import hand_ticked_members

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),  # pysyncobj's in-memory journal
]

ELECTION_MIN_S, ELECTION_MAX_S = 0.3, 0.5  # as hand_ticked_conf sets them
APPEND_ENTRIES_PERIOD_S = 0.05


LEADER_FALLBACK_S = 0.3  # for the step-down test; elsewhere 30 s


def _members(count: int, fallback: float) -> Iterator[list[RaftNode]]:
    """``count`` members on 127.0.0.1 that tick only when the test ticks them (``doTick``),
    stepping down after ``fallback`` s without a majority; destroyed afterwards."""
    yield from hand_ticked_members(count, fallback)


@pytest.fixture
def pair(request: pytest.FixtureRequest) -> Iterator[list[RaftNode]]:
    """Two members; the leader steps down after ``LEADER_FALLBACK_S`` for tests marked
    ``short_fallback``."""
    yield from _members(2, LEADER_FALLBACK_S if getattr(request, "param", "") == "short_fallback" else 30.0)


def _tick(nodes: list[RaftNode], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for node in nodes:
            node.doTick(0.005)


def _leader_and_follower(nodes: list[RaftNode]) -> tuple[RaftNode, RaftNode]:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        _tick(nodes, 0.05)
        states = sorted((n.view.state, i) for i, n in enumerate(nodes))
        if [s for s, _ in states] == [0, 2] and all(n.view.leader for n in nodes):
            return nodes[states[1][1]], nodes[states[0][1]]
    raise AssertionError(f"no leader in 10 s: {[n.view for n in nodes]}")


def test_a_follower_reads_the_waiting_heartbeats_before_it_calls_an_election(pair: list[RaftNode]) -> None:
    leader, follower = _leader_and_follower(pair)
    term, late = follower.view.term, follower.view.late_reads
    # The follower's tick thread stalls past its election timeout while the leader keeps
    # sending heartbeats: they wait unread in the follower's socket.
    _tick([leader], ELECTION_MAX_S * 2)
    follower.doTick(0)
    assert follower.view.state == 0, "the follower called an election with heartbeats waiting"
    assert follower.view.term == term
    assert follower.view.late_reads == late + 1
    assert leader.view.state == 2 and leader.view.term == term

    # A leader that really went quiet: the follower's timer runs out, and it asks for a
    # pre-vote (pysyncobj alone would raise its term at once); with two members it cannot win
    # without the leader, so its term stays (the majority case: test_a_majority_whose_...).
    held = follower._nomadd_prevote.elections_held_back
    deadline = time.monotonic() + ELECTION_MAX_S * 4
    while time.monotonic() < deadline:
        follower.doTick(0.01)
    assert follower._nomadd_prevote.elections_held_back > held, "a follower without heartbeats never asked"
    assert follower.view.term == term
    assert follower.view.late_reads == late + 1


def test_a_stall_between_two_ticks_says_whether_the_tick_thread_worked_or_waited(
    pair: list[RaftNode],
) -> None:
    node = pair[0]
    node.doTick(0)
    time.sleep(SLOW_TICK_S + 0.1)  # blocked: what waiting for the GIL looks like to the thread
    node.doTick(0)
    waited = node.view.last_stall
    assert node.view.slow_ticks == 1
    assert waited.gap > SLOW_TICK_S
    assert waited.blocked > SLOW_TICK_S - 0.1, waited.fields()
    assert waited.cpu < 0.1, waited.fields()
    end = time.monotonic() + SLOW_TICK_S + 0.1
    while time.monotonic() < end:  # the tick thread's own work
        pass
    node.doTick(0)
    worked = node.view.last_stall
    assert node.view.slow_ticks == 2
    assert worked.cpu + max(worked.runq, 0.0) > SLOW_TICK_S - 0.1, worked.fields()
    assert worked.blocked < 0.2, worked.fields()


@pytest.mark.parametrize("pair", ["short_fallback"], indirect=True)
def test_a_leader_reads_the_waiting_replies_before_it_steps_down(pair: list[RaftNode]) -> None:
    leader, follower = _leader_and_follower(pair)
    term, late = leader.view.term, leader.view.late_reads
    time.sleep(APPEND_ENTRIES_PERIOD_S)  # the leader's next heartbeat falls due ...
    leader.doTick(0)  # ... and goes out
    follower.doTick(APPEND_ENTRIES_PERIOD_S)  # the follower reads it and replies
    # The leader's tick thread stalls past its fallback timeout; the reply waits unread (the
    # follower does not tick meanwhile: it would elect itself, the leader being silent).
    time.sleep(LEADER_FALLBACK_S * 2)
    leader.doTick(0)
    assert leader.view.state == 2, "the leader stepped down with a follower's reply waiting"
    assert leader.view.term == term
    assert leader.view.late_reads == late + 1

    # A leader whose follower really went quiet still steps down.
    _tick([leader], LEADER_FALLBACK_S * 2)
    assert leader.view.state != 2, "a leader without a majority never stepped down"
    assert leader.view.late_reads == late + 1


# ---- pre-vote (nomadd.server.raft.prevote) ---------------------------------------------------
@pytest.fixture
def trio() -> Iterator[list[RaftNode]]:
    """Three members, ticked by hand, leader fallback 30 s."""
    yield from _members(3, 30.0)


def _settled(nodes: list[RaftNode]) -> RaftNode:
    """Tick until one leader that every member follows at one term; the leader."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        _tick(nodes, 0.05)
        leaders = [n for n in nodes if n.view.state == 2]
        if len(leaders) == 1 and len({(n.view.leader, n.view.term) for n in nodes}) == 1:
            _tick(nodes, 0.2)
            return leaders[0]
    raise AssertionError(f"no settled leader in 10 s: {[n.view for n in nodes]}")


def _deaf_to(node: RaftNode, leader: RaftNode) -> Callable[[], None]:
    """``leader`` stops sending AppendEntries to ``node`` (a one-way partition: everything
    else still flows); returns the heal."""
    transport = leader._SyncObj__transport
    inner = transport.send
    cut = str(node._SyncObj__selfNode.address)

    def send(peer: object, message: object) -> bool:
        to_cut = str(getattr(peer, "address", "")) == cut
        if to_cut and isinstance(message, dict) and message.get("type") == "append_entries":
            return True
        return bool(inner(peer, message))

    transport.send = send
    return lambda: setattr(transport, "send", inner)


def test_a_server_cut_off_from_a_working_leader_does_not_depose_it(trio: list[RaftNode]) -> None:
    leader = _settled(trio)
    cut, other = [n for n in trio if n is not leader]
    term = leader.view.term
    heal = _deaf_to(cut, leader)
    # Several of its election timeouts pass without a heartbeat; the leader and the other
    # follower, who hear each other, refuse it their pre-votes: nobody's term moves.
    _tick(trio, ELECTION_MAX_S * 6)
    assert leader.view.state == 2 and leader.view.term == term, "the cut-off server deposed the leader"
    assert other.view.term == term and other.view.leader == leader.view.leader
    assert cut.view.term == term and cut.view.state != 2
    assert cut._nomadd_prevote.elections_held_back >= 3
    heal()
    _tick(trio, ELECTION_MAX_S * 2)
    assert {(n.view.term, n.view.leader) for n in trio} == {(term, leader.view.leader)}


def test_a_follower_that_missed_the_pre_votes_and_is_cut_off_does_not_depose_the_leader(
    trio: list[RaftNode],
) -> None:
    """A follower learns that its leader speaks pre-vote from the leader's AppendEntries, not
    only from pre-vote messages: one that missed those (here: forgot them, as a restarted
    server has) and is then cut off from everyone (nobody answers its pre-votes) keeps its term
    instead of electing as plain Raft after SILENT_ROUNDS, and the leader stays."""
    leader = _settled(trio)
    cut = next(n for n in trio if n is not leader)
    term = leader.view.term
    for n in trio:
        n._nomadd_prevote.speaks.clear()
    _tick(trio, 0.5)  # heartbeats
    cut_addr = str(cut._SyncObj__selfNode.address)
    heals = []
    for n in trio:
        transport = n._SyncObj__transport
        inner = transport.send

        def send(peer: object, message: object, inner: Any = inner, me: RaftNode = n) -> bool:
            if me is cut or str(getattr(peer, "address", "")) == cut_addr:
                return True  # dropped: a partition around the cut-off server
            return bool(inner(peer, message))

        transport.send = send
        heals.append((transport, inner))
    _tick(trio, ELECTION_MAX_S * (prevote.SILENT_ROUNDS + 4))
    for transport, inner in heals:
        transport.send = inner
    assert cut.view.term == term, "the cut-off server raised its term (it elected without pre-votes)"
    _tick(trio, ELECTION_MAX_S * 2)
    assert leader.view.state == 2 and {(n.view.term, n.view.leader) for n in trio} == {
        (term, leader.view.leader)
    }


def test_a_majority_whose_leader_went_quiet_elects_through_pre_votes(trio: list[RaftNode]) -> None:
    leader = _settled(trio)
    rest = [n for n in trio if n is not leader]
    term = leader.view.term
    started = time.monotonic()
    deadline = started + ELECTION_MAX_S * 10
    while not any(n.view.state == 2 for n in rest) and time.monotonic() < deadline:
        _tick(rest, 0.02)  # the leader no longer ticks: silent, its sockets still open
    took = time.monotonic() - started
    new = [n for n in rest if n.view.state == 2]
    assert new, "the two left never elected a leader"
    assert new[0].view.term > term
    # one timeout for the pre-vote round, one for the election at most (and a split vote)
    assert took < ELECTION_MAX_S * 6, took

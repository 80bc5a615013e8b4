"""Raft's pre-vote (Ongaro's thesis §9.6) on top of pysyncobj, which has none.

In plain Raft a server whose election timer runs out raises its term and asks for votes; every
server that sees the higher term adopts it, and a leader that sees it steps down. So a server
that only *thinks* the leader is gone deposes a working one: a follower restarted (its timer
runs out before the leader's first heartbeat reaches it), one that spent its time loading a
large snapshot, one wiped and rejoining with an empty log. At a million allocations the C1M run
saw 59 leader changes while one wiped follower caught up, because each new leader had to start
the follower's snapshot over and the follower deposed it again.

With pre-vote, a server whose timer ran out first asks the others whether they *would* vote for
it at its next term (``nomadd_pre_vote``); nobody's term or vote changes. A server grants it
only if the candidate's log is at least as up to date as its own, the proposed term is above
its own, it is not the leader, and it has not heard from a leader for ``min_timeout`` (the
election timeout's lower bound: a leader it hears from is alive). Only with a majority of grants
(itself included) does the server let pysyncobj run its real election. Otherwise it waits for
another timeout and, meanwhile, the leader's AppendEntries make it a follower again.

Two ways around it: a leadership transfer (``TimeoutNow``: pysyncobj's ``transferInProgress``)
elects at once; and a server whose pre-votes nobody answered for ``SILENT_ROUNDS`` rounds in a
row, while it knows of no peer that speaks pre-vote, elects as plain Raft would: peers of a
version without pre-vote ignore the message, and in a rolling upgrade such a server must still
be able to elect. A peer speaks pre-vote once a request or a reply came from it; silence from
such a peer means it is cut off or busy, and is no reason to elect (a server cut off from the
others by a partition keeps its term, and does not depose the leader when the partition heals).
A leader's AppendEntries say so too (:data:`SPEAKS`, set by the transport): a follower that
missed the election's pre-votes (not yet connected, or restarted since) learns it from the
leader it follows. Before, such a follower cut off by a partition elected after
``SILENT_ROUNDS`` and deposed the leader when it came back (the integration test failed in a CI
run and in one of three runs after it).

:class:`PreVote` and :func:`grants` decide; :func:`gate`, :func:`on_request`, :func:`on_reply`
and :func:`on_append_entries` connect them to a :class:`nomadd.server.raft.glue.RaftNode`
(pysyncobj's state, read and written on its tick thread, and its transport).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from pysyncobj import syncobj as _pysyncobj_module

__all__ = [
    "PRE_VOTE",
    "PRE_VOTE_REPLY",
    "SILENT_ROUNDS",
    "SPEAKS",
    "PreVote",
    "gate",
    "grants",
    "on_append_entries",
    "on_reply",
    "on_request",
]

PRE_VOTE = "nomadd_pre_vote"
PRE_VOTE_REPLY = "nomadd_pre_vote_reply"
SPEAKS = "nomadd_pre_vote_speaks"  # on every AppendEntries this server sends: it speaks pre-vote
SILENT_ROUNDS = 3  # rounds nobody answered before electing without a pre-vote
_LOG_EVERY_S = 10.0  # rate limit for "asking for pre-votes" lines

logger = logging.getLogger("nomadd.server.raft")


def grants(
    request: dict[str, Any],
    *,
    term: int,
    last_log: tuple[int, int],
    leader: bool,
    heard_leader_s_ago: float,
    min_timeout: float,
) -> bool:
    """Whether a server at ``term`` whose log ends at ``last_log`` (term, index) grants
    ``request`` (a :data:`PRE_VOTE` message)."""
    try:
        proposed = int(request["term"])
        theirs = (int(request["last_log_term"]), int(request["last_log_index"]))
    except (KeyError, TypeError, ValueError):
        return False
    return proposed > term and theirs >= last_log and not leader and heard_leader_s_ago >= min_timeout


@dataclass
class PreVote:
    """One server's pre-vote rounds. ``round`` numbers them; a reply counts only for the round
    and term it answers."""

    voters: int = 1  # servers in the cluster, this one included (set at each round)
    round: int = 0
    term: int = 0  # the term the current round proposes
    granted: set[Any] = field(default_factory=set)
    answered: int = 0  # replies of the current round, granted or not
    silent: int = 0  # rounds in a row that nobody answered, no peer known to speak pre-vote
    speaks: set[Any] = field(default_factory=set)  # peers a pre-vote request or reply came from
    won: int | None = None  # a term a round won: the next election at it goes ahead
    heard_leader_at: float = float("-inf")  # pysyncobj's clock
    elections_held_back: int = 0  # rounds started (an election plain Raft would have called)
    logged_at: float = float("-inf")

    def heard_leader(self, now: float) -> None:
        """An AppendEntries from a leader whose term is not below ours arrived at ``now``."""
        self.heard_leader_at = now

    def may_elect(self, next_term: int, voters: int, transfer: bool) -> bool:
        """pysyncobj is about to start an election at ``next_term``: whether it may (a round
        at that term won, a leadership transfer, a server alone, or nobody answering);
        if not, the caller starts a round with :meth:`start_round`."""
        if transfer or voters <= 1:
            return True
        if self.won == next_term:
            self.won = None
            return True
        if self.round and self.answered == 0 and not self.speaks:
            self.silent += 1
        elif self.round:
            self.silent = 0
        if self.silent >= SILENT_ROUNDS:
            logger.warning(
                "raft pre-vote: no server answered %d rounds in a row (a version without pre-vote?); "
                "electing without it",
                self.silent,
            )
            self.silent = 0
            self.round = 0
            return True
        return False

    def start_round(self, next_term: int, voters: int) -> int:
        """A new round proposing ``next_term``; its number (sent with the request)."""
        self.round += 1
        self.term = next_term
        self.voters = voters
        self.granted = set()
        self.answered = 0
        self.elections_held_back += 1
        return self.round

    def reply(self, node: Any, message: dict[str, Any]) -> bool:
        """A :data:`PRE_VOTE_REPLY` from ``node``; True once it completes a majority (the
        caller then lets the election run now)."""
        self.speaks.add(node)
        if message.get("round") != self.round or message.get("term") != self.term or self.won == self.term:
            return False
        self.answered += 1
        if not message.get("granted"):
            return False
        self.granted.add(node)
        if len(self.granted) + 1 > self.voters / 2:
            self.won = self.term
            return True
        return False


# ---- on a RaftNode (tick thread) -------------------------------------------------------------
def _now() -> float:
    return float(_pysyncobj_module.monotonicTime())  # pysyncobj's deadlines' clock


def _last_log(node: Any) -> tuple[int, int]:
    return int(node._SyncObj__getCurrentLogTerm()), int(node._SyncObj__getCurrentLogIndex())


def gate(node: Any) -> None:
    """``node``'s election is due (pysyncobj holds it in this tick): let it if a round won it
    (or it needs none); otherwise ask the others and put the election timer back."""
    pv: PreVote = node._nomadd_prevote
    others = list(node._SyncObj__otherNodes)
    next_term = int(node.raftCurrentTerm) + 1
    if pv.may_elect(next_term, len(others) + 1, bool(node._SyncObj__transferInProgress)):
        return
    last_term, last_index = _last_log(node)
    request = {
        "type": PRE_VOTE,
        "term": next_term,
        "round": pv.start_round(next_term, len(others) + 1),
        "last_log_term": last_term,
        "last_log_index": last_index,
    }
    transport = node._SyncObj__transport
    for other in others:
        transport.send(other, request)
    now = _now()
    node._SyncObj__raftElectionDeadline = now + node._SyncObj__generateRaftTimeout()
    if now - pv.logged_at > _LOG_EVERY_S:
        pv.logged_at = now
        logger.info(
            "raft election timer ran out: asking for pre-votes before an election term=%d held_back=%d",
            next_term,
            pv.elections_held_back,
        )


def on_append_entries(node: Any, peer: Any, message: dict[str, Any]) -> None:
    """An AppendEntries arrived from ``peer``; from a leader whose term is not below ours, it
    says a leader is alive (no pre-vote is granted for ``raftMinTimeout``); marked
    :data:`SPEAKS`, that its sender speaks pre-vote."""
    if message.get(SPEAKS):
        node._nomadd_prevote.speaks.add(peer)
    with contextlib.suppress(TypeError, ValueError):
        if int(message.get("term", -1)) >= int(node.raftCurrentTerm):
            node._nomadd_prevote.heard_leader(_now())


def on_request(node: Any, peer: Any, message: dict[str, Any]) -> None:
    """``peer`` asks whether we would vote for it: answer, change nothing."""
    node._nomadd_prevote.speaks.add(peer)
    granted = grants(
        message,
        term=int(node.raftCurrentTerm),
        last_log=_last_log(node),
        leader=node._SyncObj__raftState == 2,
        heard_leader_s_ago=_now() - node._nomadd_prevote.heard_leader_at,
        min_timeout=float(node._SyncObj__conf.raftMinTimeout),
    )
    reply = {
        "type": PRE_VOTE_REPLY,
        "term": message.get("term"),
        "round": message.get("round"),
        "granted": granted,
    }
    node._SyncObj__transport.send(peer, reply)


def on_reply(node: Any, peer: Any, message: dict[str, Any]) -> None:
    """An answer to our pre-vote; a majority of grants elects at the next tick."""
    if node._SyncObj__raftState != 2 and node._nomadd_prevote.reply(peer, message):
        node._SyncObj__raftElectionDeadline = 0.0

"""The pre-vote's decisions (nomadd.server.raft.prevote), without a network."""

from __future__ import annotations

from nomadd.server.raft.prevote import SILENT_ROUNDS, PreVote, grants


def _req(term: int = 6, last_term: int = 5, last_index: int = 100) -> dict[str, object]:
    return {
        "type": "nomadd_pre_vote",
        "term": term,
        "round": 1,
        "last_log_term": last_term,
        "last_log_index": last_index,
    }


def _grants(req: dict[str, object], *, leader: bool = False, heard: float = 10.0) -> bool:
    return grants(req, term=5, last_log=(5, 100), leader=leader, heard_leader_s_ago=heard, min_timeout=0.4)


def test_granted_only_to_an_up_to_date_log_at_a_higher_term_with_no_live_leader() -> None:
    assert _grants(_req())
    assert _grants(_req(last_index=101)) and _grants(_req(last_term=6, last_index=1))
    assert not _grants(_req(last_index=99)), "a shorter log"
    assert not _grants(_req(last_term=4, last_index=500)), "an older last term"
    assert not _grants(_req(term=5)), "a term not above ours"
    assert not _grants(_req(), leader=True), "we are the leader"
    assert not _grants(_req(), heard=0.1), "we heard from a leader within the minimum timeout"
    assert not _grants({"type": "nomadd_pre_vote", "term": "x"}), "malformed"
    assert not _grants({}), "malformed"


def test_a_round_wins_with_a_majority_and_only_its_own_replies_count() -> None:
    pv = PreVote()
    assert not pv.may_elect(6, 3, transfer=False)
    rnd = pv.start_round(6, 3)
    assert not pv.reply("a", {"round": rnd - 1, "term": 6, "granted": True}), "an older round"
    assert not pv.reply("a", {"round": rnd, "term": 7, "granted": True}), "another term"
    assert not pv.reply("b", {"round": rnd, "term": 6, "granted": False})
    assert pv.reply("a", {"round": rnd, "term": 6, "granted": True})
    assert pv.may_elect(6, 3, transfer=False)
    assert not pv.may_elect(6, 3, transfer=False), "a win is used once"


def test_five_voters_need_two_grants_besides_our_own() -> None:
    pv = PreVote()
    rnd = pv.start_round(2, 5)
    assert not pv.reply("a", {"round": rnd, "term": 2, "granted": True})
    assert pv.reply("b", {"round": rnd, "term": 2, "granted": True})


def test_a_transfer_or_a_lone_server_elects_at_once() -> None:
    assert PreVote().may_elect(3, 3, transfer=True)
    assert PreVote().may_elect(3, 1, transfer=False)


def test_after_rounds_nobody_answered_it_elects_as_plain_raft_but_a_refusal_resets_that() -> None:
    pv = PreVote()
    elected_after = None
    for i in range(SILENT_ROUNDS + 2):
        if pv.may_elect(4, 3, transfer=False):
            elected_after = i
            break
        pv.start_round(4, 3)
    assert elected_after == SILENT_ROUNDS
    pv = PreVote()
    for _ in range(SILENT_ROUNDS * 3):
        assert not pv.may_elect(4, 3, transfer=False)
        rnd = pv.start_round(4, 3)
        pv.reply("a", {"round": rnd, "term": 4, "granted": False})  # somebody answers: no


def test_silence_from_a_peer_known_to_speak_pre_vote_is_no_reason_to_elect() -> None:
    pv = PreVote()
    rnd = pv.start_round(4, 3)
    pv.reply("a", {"round": rnd, "term": 4, "granted": False})  # "a" speaks pre-vote
    for _ in range(SILENT_ROUNDS * 3):  # then cut off: nobody answers any more
        assert not pv.may_elect(4, 3, transfer=False)
        pv.start_round(4, 3)

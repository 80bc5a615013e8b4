"""The piggy-back queue: bounded retransmits, supersession by key, byte and count budgets."""

from __future__ import annotations

from nomadd.gossip.broadcast import MAX_QUEUED_BROADCASTS, BroadcastQueue, retransmit_limit


def test_retransmit_limit_scales_with_log_of_members() -> None:
    assert retransmit_limit(4, 1) == 4
    assert retransmit_limit(4, 9) == 4
    assert retransmit_limit(4, 10) == 8
    assert retransmit_limit(4, 100) == 12


def test_each_update_is_sent_a_limited_number_of_times() -> None:
    q = BroadcastQueue(retransmit_mult=2)
    q.queue("a", b"A")
    sent = [q.get(100, 10, members=3) for _ in range(4)]
    assert sent == [[b"A"], [b"A"], [], []]
    assert len(q) == 0


def test_newer_update_for_same_key_replaces_older() -> None:
    q = BroadcastQueue(retransmit_mult=1)
    q.queue("a", b"old")
    q.queue("b", b"B")
    q.queue("a", b"new")
    assert sorted(q.get(100, 10, members=1)) == [b"B", b"new"]


def test_least_sent_then_newest_first_within_budget() -> None:
    q = BroadcastQueue(retransmit_mult=3)
    q.queue("a", b"aaaa")
    assert q.get(100, 10, members=1) == [b"aaaa"]
    q.queue("b", b"bbbb")
    q.queue("c", b"cccc")
    assert q.get(8, 10, members=1) == [b"cccc", b"bbbb"]  # "a" was sent once already
    assert q.get(100, 1, members=1) == [b"cccc"]  # count budget; all sent once: newest


def test_queue_is_bounded() -> None:
    q = BroadcastQueue(retransmit_mult=1)
    for i in range(MAX_QUEUED_BROADCASTS + 10):
        q.queue(str(i), b"x")
    assert len(q) == MAX_QUEUED_BROADCASTS

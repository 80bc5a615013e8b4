"""raft.glue.trim_overlap: an AppendEntries that overlaps a follower's log is cut so pysyncobj
does not delete entries the follower holds (and acknowledged); conflicts go through."""

from __future__ import annotations

from typing import Any

from nomadd.server.raft.glue import trim_overlap

# pysyncobj log entries: (command, index, term); index 5 is the compaction point
LOG = [(b"", 5, 1), (b"a", 6, 1), (b"b", 7, 2), (b"c", 8, 2), (b"d", 9, 3), (b"e", 10, 3)]


def _msg(prev: int, prev_term: int, entries: list[tuple[Any, int, int]], term: int = 3) -> dict[str, Any]:
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": 8,
        "prevLogIdx": prev,
        "prevLogTerm": prev_term,
        "entries": entries,
    }


def test_no_overlap_goes_through_unchanged() -> None:
    m = _msg(10, 3, [(b"f", 11, 3)])
    assert trim_overlap(m, LOG) is m
    assert trim_overlap(_msg(12, 3, []), LOG)["prevLogIdx"] == 12  # beyond the log: pysyncobj resets
    assert trim_overlap(_msg(3, 1, [(b"x", 4, 1)]), LOG)["prevLogIdx"] == 3  # before the log


def test_a_resend_is_cut_to_what_the_follower_lacks() -> None:
    m = _msg(7, 2, [(b"c", 8, 2), (b"d", 9, 3), (b"e", 10, 3), (b"f", 11, 3)])
    out = trim_overlap(m, LOG)
    assert out["prevLogIdx"] == 10 and out["prevLogTerm"] == 3
    assert out["entries"] == [(b"f", 11, 3)]
    assert out["commit_index"] == 8 and out["term"] == 3
    assert m["prevLogIdx"] == 7  # the message itself is left as it was


def test_a_shorter_resend_keeps_the_entries_after_it() -> None:
    # everything sent is held; the follower's last entry is of the leader's term
    out = trim_overlap(_msg(6, 1, [(b"b", 7, 2), (b"c", 8, 2)]), LOG)
    assert (out["prevLogIdx"], out["prevLogTerm"], out["entries"]) == (10, 3, [])
    # a heartbeat from a nextIndex that went back
    out = trim_overlap(_msg(8, 2, []), LOG)
    assert (out["prevLogIdx"], out["entries"]) == (10, [])


def test_held_entries_of_an_older_term_beyond_the_message_are_left_to_pysyncobj() -> None:
    m = _msg(6, 1, [(b"b", 7, 2)], term=4)  # our entries 8-10 are not from this leader's term
    assert trim_overlap(m, LOG) is m
    # unless the message itself reaches our last entry
    out = trim_overlap(_msg(8, 2, [(b"d", 9, 3), (b"e", 10, 3)], term=4), LOG)
    assert (out["prevLogIdx"], out["entries"]) == (10, [])


def test_conflicts_and_mismatches_go_through_unchanged() -> None:
    conflict = _msg(7, 2, [(b"c", 8, 2), (b"X", 9, 4), (b"Y", 10, 4)], term=4)
    assert trim_overlap(conflict, LOG) is conflict  # pysyncobj deletes from 8: Raft deletes from 9
    wrong_prev = _msg(7, 1, [(b"c", 8, 2)])
    assert trim_overlap(wrong_prev, LOG) is wrong_prev  # pysyncobj answers reset
    gap = _msg(7, 2, [(b"d", 9, 3)])
    assert trim_overlap(gap, LOG) is gap
    gap_after = _msg(9, 3, [(b"e", 10, 3), (b"g", 12, 3)])
    assert trim_overlap(gap_after, LOG) is gap_after
    assert trim_overlap(_msg(7, 2, []), []) is not None  # an empty log: unchanged

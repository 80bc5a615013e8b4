"""Strict diffs (:func:`codec_diff.to_wire_diff`): a field ``==`` to the base's but not the same
(a map in another key order, -0.0 for 0.0) is sent, or a rebuilt struct takes the base's."""

from __future__ import annotations

import math

import pytest

from nomadd.structs import codec_diff
from nomadd.structs.alloc import Allocation, AllocMetric, TaskState


def test_a_diff_sends_a_map_in_another_order_and_a_negative_zero() -> None:
    base = Allocation(id="a1", metrics=AllocMetric(scores={"n1.binpack": 0.0, "n2.binpack": 1.0}))
    other = Allocation(id="a2", metrics=AllocMetric(scores={"n2.binpack": 1.0, "n1.binpack": -0.0}))
    rebuilt = codec_diff.from_wire_over(Allocation, codec_diff.to_wire_diff(base, other), base)
    assert rebuilt.metrics is not None
    assert list(rebuilt.metrics.scores) == ["n2.binpack", "n1.binpack"]
    assert math.copysign(1.0, rebuilt.metrics.scores["n1.binpack"]) == -1.0


def test_a_diff_of_equal_structs_is_empty() -> None:
    a = Allocation(
        id="a1", task_states={"web": TaskState(restarts=1)}, metrics=AllocMetric(scores={"x": 0.5})
    )
    b = Allocation(
        id="a1", task_states={"web": TaskState(restarts=1)}, metrics=AllocMetric(scores={"x": 0.5})
    )
    assert codec_diff.to_wire_diff(a, b) == {}


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (0.0, -0.0, False),
        (1.5, 1.5, True),
        (1, 1.0, False),
        (1, True, False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, False),
        ({"a": 1, "b": 2}, {"a": 1, "b": 2}, True),
        ((0.0,), (-0.0,), False),
        ([{"a": 0.0}], [{"a": 0.0}], True),
        (TaskState(restarts=1), TaskState(restarts=1), True),
        (TaskState(restarts=1), TaskState(restarts=2), False),
        (None, None, True),
        ("x", "x", True),
    ],
)
def test_strict_equal(a: object, b: object, same: bool) -> None:
    assert codec_diff.strict_equal(a, b) is same


def test_an_over_reader_passes_the_fields_it_reads_through_their_hooks() -> None:
    """Only the fields of the diff go through a hook; a struct field read as a diff of a class
    with hooks goes through those (field by field), of another class through the field's."""
    seen: list[object] = []

    def tag(v: object) -> object:
        seen.append(v)
        return v

    reader = codec_diff.OverReader(
        {Allocation: {"name": str.upper, "node_id": str.upper, "metrics": tag}, AllocMetric: {"scores": tag}}
    )
    base = Allocation(id="a1", name="web", node_id="n1", metrics=AllocMetric(scores={"x": 1.0}))
    got = reader.read(Allocation, {"name": "api", "metrics": {"scores": {"y": 2.0}}}, base)
    assert (got.name, got.node_id) == ("API", "n1")  # node_id not read: the base's, untouched
    assert got.metrics == AllocMetric(scores={"y": 2.0})
    assert seen == [{"y": 2.0}]  # the metric read as a diff: its scores' hook, not the field's
    whole = reader.read(Allocation, {"metrics": {"scores": {}}}, Allocation(id="a2"))
    assert seen[-1] is whole.metrics  # no metric in the base: read whole, then the field's hook
    assert reader.read(Allocation, {"metrics": None}, base).metrics is None  # None: no hook

"""The allocations table's version 4 columns (:class:`~nomadd.server.state.store_runs.RunCodec`).

A version 4 dump writes the allocations of a job version that differ from a head row only in
their ID, name, node and a few numbers of their metric as columns (:func:`_run_encode`); a
restore builds them over the head (:func:`_run_decode`), or, decoding against the running
state (store_reuse), keeps the running state's row where it is strictly equal
(:func:`_run_kept`). docs/contributing/raft.md, "Compaction cost" (the dump format) and "A
restore into the running C1M cluster".
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import sys
from collections.abc import Callable, Mapping
from typing import Any

from nomadd.server.state import store_reuse
from nomadd.server.state.store_runs import RunCodec, StringsIn, StringsOut
from nomadd.structs.alloc import Allocation, AllocMetric, compact_counts, compact_scores_of
from nomadd.structs.codec_diff import hiding_fields, replacer, strict_equal, to_wire_diff

__all__ = ["ALLOC_RUNS"]

# A version 4 dump (store_runs) writes the allocations after a head that differ from it only in
# these fields (and, of the metric, in these) as columns: a job version's placements, each on
# its own node with its own scores, nodes evaluated and exhausted.
_RUN_FIELDS = frozenset({"id", "name", "node_id", "node_name", "metrics"})
_RUN_METRIC = ("scores", "allocation_time", "nodes_evaluated", "nodes_exhausted", "dimension_exhausted")
_RUN_METRIC_FIELDS = frozenset(_RUN_METRIC)
_STR = frozenset({str})
_run_alloc = replacer(Allocation, "id", "name", "node_id", "node_name", "metrics")
_run_metric = replacer(AllocMetric, *_RUN_METRIC)


def _run_fits(head: Allocation, key: Any, alloc: Allocation) -> bool:
    if head.metrics is None or alloc.metrics is None or key != alloc.id:
        return False
    m = alloc.metrics
    # written as str, the keys through StringsOut (which tells strings from numbers by type)
    if type(alloc.name) is not str or type(alloc.node_id) is not str or type(alloc.node_name) is not str:
        return False
    if not set(map(type, m.scores)) <= _STR or not set(map(type, m.dimension_exhausted)) <= _STR:
        return False
    diff = to_wire_diff(head, alloc)
    if not diff.keys() <= _RUN_FIELDS:
        return False
    metric = diff.get("metrics")
    return metric is None or (isinstance(metric, dict) and metric.keys() <= _RUN_METRIC_FIELDS)


def _run_encode(keys: list[Any], allocs: list[Allocation], strings: StringsOut) -> list[Any]:
    # the order StringsOut numbers strings in is the order _run_decode reads them back in
    out = strings.out
    metrics = [a.metrics for a in allocs]
    return [
        list(keys),
        [a.name for a in allocs],
        [out(a.node_id) for a in allocs],
        [out(a.node_name) for a in allocs],
        [[out(k) for k in m.scores] for m in metrics if m is not None],
        [list(m.scores.values()) for m in metrics if m is not None],
        [m.allocation_time for m in metrics if m is not None],
        [m.nodes_evaluated for m in metrics if m is not None],
        [m.nodes_exhausted for m in metrics if m is not None],
        [dict(m.dimension_exhausted) for m in metrics if m is not None],
    ]


def _run_decode(
    head: Allocation, columns: list[Any], strings: StringsIn, live: Mapping[str, Allocation] | None = None
) -> tuple[list[Any], list[Any]]:
    """The allocations of a run, each ``head`` with its own ID, name, node and metric (the
    head's, with its own scores, allocation time and counts): stored compact, as
    ``stored_over`` stores a row. With ``live`` (``head`` is the running state's row, a
    restore's: store_reuse), a row strictly equal to the one ``live`` holds under its ID is
    that one (:func:`_same_run_row`), and the copy is not built."""
    if len(columns) != 10 or len({len(c) for c in columns}) != 1:
        raise ValueError("state dump has allocation columns of another shape")
    ids, names, node_ids, node_names, score_keys, score_values, times, evaluated, exhausted, dims = columns
    ids = list(map(sys.intern, ids))
    node_ids = strings.get_all(node_ids)  # in the order _run_encode numbered them
    node_names = strings.get_all(node_names)
    get_all = strings.get_all
    metric = head.metrics
    if live is not None and metric is not None:  # a run's head has a metric (_run_fits)
        return ids, _run_kept(head, live, columns, ids, node_ids, node_names, get_all)
    scores = [compact_scores_of(get_all(ks), vs) for ks, vs in zip(score_keys, score_values, strict=True)]
    metrics = list(
        map(
            _run_metric,
            itertools.repeat(metric),
            scores,
            times,
            evaluated,
            exhausted,
            map(compact_counts, dims),
        )
    )
    allocs = list(map(_run_alloc, itertools.repeat(head), ids, names, node_ids, node_names, metrics))
    if live is not None:
        store_reuse.note(0, len(allocs))  # built over a head with no metric: none is kept
    return ids, allocs


_HEAD_FIELDS = operator.attrgetter(
    *(f.name for f in dataclasses.fields(Allocation) if f.name not in _RUN_FIELDS)
)
_HEAD_METRIC = operator.attrgetter(
    *(f.name for f in dataclasses.fields(AllocMetric) if f.name not in _RUN_METRIC)
)
# of those, the ones ``==`` does not settle strictly (maps, structs holding floats: strict_equal)
_HEAD_HIDING = operator.attrgetter(*(f for f in hiding_fields(Allocation) or () if f not in _RUN_FIELDS))
_METRIC_HIDING = operator.attrgetter(*(f for f in hiding_fields(AllocMetric) or () if f not in _RUN_METRIC))


def _run_kept(
    head: Allocation,
    live: Mapping[str, Allocation],
    columns: list[Any],
    ids: list[str],
    node_ids: list[str],
    node_names: list[str],
    get_all: Callable[[list[Any]], list[str]],
) -> list[Allocation]:
    """:func:`_run_decode`'s rows over ``head``, the running state's row (a restore's): each
    the running state's row under its ID if that is strictly equal to it (:func:`_same_run_row`),
    else built. The score keys are read in order for every row (StringsIn numbers them so)."""
    metric = head.metrics
    assert metric is not None
    fields = (_HEAD_FIELDS(head), _HEAD_METRIC(metric), _HEAD_HIDING(head), _METRIC_HIDING(metric))
    rows = []
    built = 0
    cols = zip(ids, columns[1], node_ids, node_names, columns[4], *columns[5:], strict=True)
    for k, name, node_id, node_name, keys, values, at, evaluated, exhausted, dims in cols:
        keys = get_all(keys)
        row = live.get(k)
        mine = (name, node_id, node_name, at, evaluated, exhausted)
        if row is None or not _same_run_row(row, fields, mine, keys, values, dims):
            built += 1
            scores = compact_scores_of(keys, values)
            row = _run_alloc(
                head,
                k,
                name,
                node_id,
                node_name,
                _run_metric(metric, scores, at, evaluated, exhausted, compact_counts(dims)),
            )
        rows.append(row)
    store_reuse.note(len(rows) - built, built)
    return rows


def _same_run_row(
    row: Allocation,
    head: tuple[tuple[Any, ...], ...],
    mine: tuple[Any, ...],
    keys: list[str],
    values: list[Any],
    dims: Any,
) -> bool:
    """Whether the running state's ``row`` is :func:`strict_equal` to the row :func:`_run_decode`
    builds from one row of columns (``mine``: name, node ID, node name, allocation time, nodes
    evaluated and exhausted; the score keys and values; the dimensions exhausted) over a head
    whose other fields, and its metric's, are ``head`` (with, apart, those of them ``==`` does
    not settle strictly: most often the same objects, as the rows of a plan share them). As
    ``strict_equal`` does, strings and ints are settled by ``==``, maps and floats strictly.
    Score keys are compared as objects (interned on both sides): keys that are not interned
    make it False, and the row is built."""
    m = row.metrics
    if type(row) is not Allocation or type(m) is not AllocMetric:
        return False
    if (
        row.name,
        row.node_id,
        row.node_name,
        m.allocation_time,
        m.nodes_evaluated,
        m.nodes_exhausted,
    ) != mine:
        return False
    fields, metric_fields, hiding, metric_hiding = head
    if _HEAD_FIELDS(row) != fields or _HEAD_METRIC(m) != metric_fields:
        return False
    scores = m.scores
    if len(scores) != len(keys) or not all(map(operator.is_, scores, keys)):
        return False
    held = list(scores.values())
    if held != values or list(map(type, held)) != list(map(type, values)):
        return False  # a float's type is not settled by ==
    if 0 in held and not all(map(strict_equal, held, values)):
        return False  # nor a zero's sign
    exhausted = m.dimension_exhausted  # a dict of counts, as compact_counts stores one
    if type(exhausted) is not dict or type(dims) is not dict or exhausted != dims:
        return False
    if exhausted and (
        list(exhausted) != list(dims) or list(map(type, exhausted.values())) != list(map(type, dims.values()))
    ):
        return False
    return _same_objects(_HEAD_HIDING(row), hiding) and _same_objects(_METRIC_HIDING(m), metric_hiding)


def _same_objects(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return all(map(operator.is_, a, b)) or all(map(strict_equal, a, b))


_NOT_JOB = operator.attrgetter(*(f.name for f in dataclasses.fields(Allocation) if f.name != "job"))
_NOT_JOB_HIDING = operator.attrgetter(*(f for f in hiding_fields(Allocation) or () if f != "job"))


def _same_head(row: Allocation, head: Allocation) -> bool:
    """Whether the running state's ``row`` is a decoded ``head``: :func:`strict_equal` but for
    the job, which is ``==`` (store_jobs._kept_version says why; a plan a follower's worker
    scheduled holds its own copy of the job, so a leader's rows do not all hold the stored one)."""
    if type(row) is not Allocation or type(head) is not Allocation or _NOT_JOB(row) != _NOT_JOB(head):
        return False
    job, other = row.job, head.job
    if job is not other and (type(job) is not type(other) or job != other):
        return False
    return _same_objects(_NOT_JOB_HIDING(row), _NOT_JOB_HIDING(head))


ALLOC_RUNS = RunCodec(fits=_run_fits, encode=_run_encode, decode=_run_decode, same=_same_head)

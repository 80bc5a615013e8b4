"""Version 4 dumps: the rows of a table written as runs of columns (:class:`RunCodec`).

In a version 3 dump every allocation row is a map of its differences from the row before (five
keys for most: ``id``, ``name``, ``node_id``, ``node_name`` and a metric whose scores map has a
``<node ID>.<scorer>`` key per node scored), each read back by msgpack as a dict of fresh
strings and rebuilt through generic per-row readers: 12.5 µs of CPU a row, most of a restore's.

A table with a :class:`RunCodec` (allocations) is written group by group (the rows sharing one
object, a job version): each group as segments, each segment a *head* row written as version 3
writes it (its difference from the row before, or whole) and the rows after it that differ from
the head only in the few fields the codec writes as columns (``fits``), one list per field.
Strings many rows repeat (node IDs and names, score keys) are written once and then by number
(:class:`StringsOut`, :class:`StringsIn`). A restore builds a segment's rows column by column
over its head, with no per-row dict or generic reader. Layout of such a table::

    [group, ...]            # one per shared object, in the order version 3 writes them
    group: [segment, ...]
    segment: [head key, head wire, columns]   # columns[0]: the keys of the rows after the head
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from immutables import Map

from nomadd.server.state import store_reuse
from nomadd.structs.codec_diff import replacer, strict_equal

__all__ = ["RunCodec", "StringsIn", "StringsOut", "keys_decoder", "read_runs", "row_key", "write_runs"]


# The field of a row that holds its key (an allocation's, an evaluation's ID): the FSM stores a
# row under its own ID string, and so does a restore (two equal strings: 85 MB at a million
# allocations); interned, so the index rows (allocs_by_node, ...) find the same one
_KEY_FIELD = "id"


def row_key(k: Any, raw: Any) -> Any:
    """``k``, interned and shared with the row's ID when the row holds it (a dict row)."""
    if type(raw) is dict and type(k) is str and raw.get(_KEY_FIELD) == k:  # one string, interned
        k = raw[_KEY_FIELD] = sys.intern(k)
    return k


class StringsOut:
    """A dump's repeated strings, written as themselves the first time and by number after."""

    __slots__ = ("_numbers",)

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def out(self, s: str) -> str | int:
        n = self._numbers.get(s)
        if n is None:
            self._numbers[s] = len(self._numbers)
            return s
        return n


class StringsIn:
    """The reading side of :class:`StringsOut`: each string read the first time is interned and
    numbered, a number is the string numbered so (read in the order they were written)."""

    __slots__ = ("_strings",)

    def __init__(self) -> None:
        self._strings: list[str] = []

    def get(self, item: str | int) -> str:
        if type(item) is str:
            s = sys.intern(item)
            self._strings.append(s)
            return s
        if type(item) is not int or not 0 <= item < len(self._strings):
            raise ValueError(f"state dump refers to unknown string {item!r}")
        return self._strings[item]

    def get_all(self, items: list[Any]) -> list[str]:
        try:  # all numbers, the usual case
            if not items or min(items) >= 0:
                return list(map(self._strings.__getitem__, items))
        except (TypeError, IndexError):  # a string among them (read here first), or a bad number
            pass
        return [self.get(item) for item in items]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCodec:
    """How a table's rows that differ from a head row in a few fields are written as columns.

    * ``fits(head, key, row)``: whether ``row`` (stored under ``key``) can follow ``head`` in
      its segment: it differs from it strictly only in the fields the columns carry, and
      ``decode`` rebuilds it exactly;
    * ``encode(keys, rows, strings)``: the columns of the rows after a head (``columns[0]``
      their keys);
    * ``decode(head, columns, strings, live)``: ``(keys, rows)`` built over ``head`` (which is
      the stored row as a version 3 restore builds it), in the order written. ``live`` (a
      restore's, when ``head`` is the running state's row: store_reuse) is the running state's
      table: a row strictly equal to its row under the same key is that row. Given ``live``,
      it counts every row it kept and built (``store_reuse.note``): :func:`read_runs` keeps
      the running table whole only while nothing was built;
    * ``same(running, head)``: whether a decoded head is the running state's row under its key
      (a restore's, store_reuse; ``strict_equal`` unless the table says otherwise).

    The shared field (:class:`~nomadd.server.state.store_codec.SharedField`) is the head's for
    every row of its segment; ``fits`` is asked only of rows with the head's shared object."""

    fits: Callable[[Any, Any, Any], bool]
    encode: Callable[[list[Any], list[Any], StringsOut], list[Any]]
    decode: Callable[[Any, list[Any], StringsIn, Mapping[Any, Any] | None], tuple[list[Any], list[Any]]]
    same: Callable[[Any, Any], bool] = strict_equal  # a running row that a decoded head may be


class _Out(Protocol):  # store_codec._Packed
    def pack(self, obj: Any) -> None: ...
    def array_header(self, n: int) -> None: ...


class _Shared(Protocol):  # store_codec.SharedField
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...


class _Refs(Protocol):  # store_codec.Refs
    def out(self, kind: str, obj: Any) -> int | None: ...


def write_runs(
    out: _Out,
    rows: Mapping[Any, Any],
    runs: RunCodec,
    codecs: tuple[Callable[[Any], Any], Callable[[Any, Any], dict[str, Any]]],
    field: _Shared,
    refs: _Refs,
    groups: list[list[Any]],
    written: list[Any],
) -> None:
    """A table of runs, group by group (``groups``: the keys of each shared object's rows), each
    group's segments packed together. A head is written as version 3 writes a row (``codecs``:
    the whole row for the first, else its difference from the row before; the group's first
    row also names the group's object, None included); the rows after it that ``runs.fits``
    as its columns. ``written`` gets the keys in the order written (and read back)."""
    encode, diff = codecs
    detachers: list[Callable[..., Any]] = []  # the replacer of the rows' class, once known

    def detached(row: Any) -> Any:  # the row without its shared object (written by reference)
        if getattr(row, field.name) is None:
            return row
        if not detachers:
            detachers.append(replacer(type(row), field.name))
        return detachers[0](row, None)

    strings = StringsOut()
    prev: Any = None
    out.array_header(len(groups))
    for keys in groups:
        segments: list[list[Any]] = []
        head: Any = None
        following: list[Any] = []
        following_keys: list[Any] = []
        obj: Any = None
        for k in keys:
            v = rows[k]
            written.append(k)
            # a group's rows hold one object: compared with it attached, it is no difference
            if head is not None and runs.fits(head, k, v):
                following.append(v)
                following_keys.append(k)
                prev = v
                continue
            if following:
                segments[-1][2] = runs.encode(following_keys, following, strings)
            wire = encode(detached(v)) if prev is None else diff(detached(prev), detached(v))
            if not segments:  # the group's object, written once (its rows all hold it)
                obj = getattr(v, field.name)
                wire[field.name] = refs.out(field.kind, obj)
            segments.append([k, wire, []])
            head, prev, following, following_keys = v, v, [], []
        if following:
            segments[-1][2] = runs.encode(following_keys, following, strings)
        out.pack(segments)


def read_runs(
    unpacker: Any,
    runs: RunCodec,
    decode: Callable[[Any], Any],
    over: Callable[[Any, Any], Any],
    read: list[Any],
    live: Mapping[Any, Any] | None = None,
) -> Map[Any, Any]:
    """A table of runs (:func:`write_runs`), one group of rows unpacked at a time: a head read
    with ``decode`` (the first) or ``over`` the row before, keyed by :func:`row_key`;
    the rows after it built by ``runs.decode``. ``read`` gets the keys in the order read.
    ``live``: the running state's table, whose strictly equal rows a restore keeps (store_reuse).

    While every row read is the running state's own (kept), no table is built: if the last one
    is, and they are all of ``live``'s rows, ``live`` itself is the table (equal to the one built,
    row for row: a restore of an unchanged table, at a million allocations 8 % of its decode).
    The first row that is not kept builds the table from the rows read so far."""
    built: Any = Map().mutate() if live is None else None  # None: every row so far is live's
    first = len(read)  # this table's keys are read[first:]
    strings = StringsIn()
    prev: Any = None
    for _ in range(unpacker.read_array_header()):
        for k, raw, columns in unpacker.unpack():
            k = row_key(k, raw)
            prev = decode(raw) if prev is None else over(raw, prev)
            held = live.get(k) if live is not None else None
            if held is not None and runs.same(held, prev):
                prev = held
                store_reuse.note(1, 0)
            elif live is not None:
                store_reuse.note(0, 1)  # a head the running state holds otherwise, or not at all
                if built is None:
                    built = _built_from(live, read, first)
            if built is not None:
                built[k] = prev
            read.append(k)
            if columns:
                rebuilt = store_reuse.counts()[1]
                keys, decoded = runs.decode(prev, columns, strings, live if prev is held else None)
                if len(keys) != len(decoded) or not decoded:
                    raise ValueError("state dump has a run whose columns do not match")
                if live is not None and prev is not held:
                    store_reuse.note(0, len(decoded))  # over a head built: built too
                if built is None and store_reuse.counts()[1] != rebuilt:
                    built = _built_from(live, read, first)
                if built is not None:
                    built.update(zip(keys, decoded, strict=True))
                read.extend(keys)
                prev = decoded[-1]
    if built is None:
        assert live is not None
        keys = read[first:]
        if len(keys) == len(live) == len(set(keys)):
            return live if isinstance(live, Map) else Map(live)
        built = _built_from(live, read, first)  # some of live's rows are not in the dump
    return built.finish()  # type: ignore[no-any-return]


def _built_from(live: Mapping[Any, Any] | None, read: list[Any], first: int) -> Any:
    """A table being built (a ``MapMutation``) holding ``live``'s rows under the keys
    ``read[first:]`` read so far (:func:`read_runs`: each was kept as the running state's)."""
    assert live is not None
    built: Any = Map().mutate()
    built.update((k, live[k]) for k in read[first:])
    return built


def keys_decoder(keys: list[Any], decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``decode`` of a row written as numbers of another table's keys (a key it lacked: itself)."""
    at = keys.__getitem__

    def decode_keys(raw: Any) -> Any:
        try:
            if not raw or min(raw) >= 0:  # all numbers, the usual case
                return decode(list(map(at, raw)))
        except (TypeError, IndexError):
            pass
        if any(type(i) is int and not 0 <= i < len(keys) for i in raw):
            raise ValueError("state dump refers to a row number it lacks")
        return decode([keys[i] if type(i) is int else i for i in raw])

    return decode_keys

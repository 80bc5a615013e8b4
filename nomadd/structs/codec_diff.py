"""Similar structs: wire diffs (:func:`to_wire_diff`, :func:`from_wire_over`) and cheap copies
with a few fields changed (:func:`replacer`).

A plan places many allocations that differ in a few fields; sending one base and each
allocation's differences keeps Raft entries small. Converters are generated per class, like
the rest of :mod:`nomadd.structs.codec`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from nomadd.structs.codec import _in_expr, _Kind, _lock, _out_expr, _plan

__all__ = [
    "OverReader",
    "Replacer",
    "fast_replace",
    "from_wire_over",
    "hiding_fields",
    "replacer",
    "strict_equal",
    "to_wire_diff",
]

T = TypeVar("T")

_diff_cache: dict[type, Callable[[object, object], dict[str, object]]] = {}
_over_cache: dict[tuple[type, tuple[str, ...]], Callable[[Mapping[str, object], object], object]] = {}
_replacer_cache: dict[tuple[type, tuple[str, ...]], object] = {}


_PLAIN = (str, int, bool, bytes)


def strict_equal(a: object, b: object) -> bool:
    """``a == b`` as a copy must be: the same types, maps with their keys in the same order,
    floats with the same sign (``-0.0 == 0.0`` and ``{"a": 1, "b": 2} == {"b": 2, "a": 1}``
    are true in Python, but a value decoded over another must not take its order or sign).
    A diff that leaves out a field because it is ``==`` to the base's would send the base's."""
    return a is b or (type(a) is type(b) and a == b and _equal_is_strict(a, b))


def _equal_is_strict(a: object, b: object) -> bool:
    """For ``a == b`` of one type: whether they are also :func:`strict_equal`. Of a struct,
    only the fields whose type can hold such a difference (:func:`_hiding_fields`) are walked
    (an allocation's strings and ints are settled by its ``==``)."""
    t = type(a)
    if t is float:
        return a != 0.0 or math.copysign(1.0, a) == math.copysign(1.0, b)  # type: ignore[arg-type]
    if t in _PLAIN or a is None:
        return True
    if t is tuple or t is list:
        return all(map(strict_equal, a, b))  # type: ignore[call-overload]
    names = _hiding_cache.get(t, ()) if t is not dict else None
    if names == ():  # not seen yet (or a struct that has none: nothing to walk)
        names = _hiding_fields(t)
    if names is not None:
        return all(strict_equal(getattr(a, n), getattr(b, n)) for n in names)
    if isinstance(a, Mapping):
        m = typing.cast(Mapping[object, object], b)
        return all(
            strict_equal(ka, kb) and strict_equal(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), m.items(), strict=True)
        )
    return True  # an enum member, ...


_hiding_cache: dict[type, tuple[str, ...] | None] = {}


def _hiding_fields(t: type) -> tuple[str, ...] | None:
    """The fields of struct ``t`` whose values can be ``==`` but not :func:`strict_equal`
    (floats, maps, free-form values, structs holding one); None if ``t`` is not a struct."""
    if t in _hiding_cache:
        return _hiding_cache[t]
    names = None
    if dataclasses.is_dataclass(t):
        _hiding_cache[t] = tuple(f.name for f in dataclasses.fields(t))  # while in progress: all
        names = tuple(fp.name for fp in _plan(t) if _may_hide(fp.kind))
    _hiding_cache[t] = names
    return names


hiding_fields = _hiding_fields  # public: a caller that settles the rest of a struct with ``==``


def _may_hide(kind: _Kind) -> bool:
    """Whether values of ``kind`` can be ``==`` and differ (:func:`strict_equal`)."""
    if kind.tag == "prim":
        return kind.typ is float
    if kind.tag in ("any", "map"):
        return True
    if kind.tag in ("tuple", "opt"):
        return kind.inner is not None and _may_hide(kind.inner)
    if kind.tag == "struct":
        return bool(_hiding_fields(typing.cast(type, kind.typ)))
    return False  # an enum


def _nested_struct(kind: _Kind) -> type | None:
    """The struct type of a struct or optional-struct field (diffed field by field)."""
    if kind.tag == "opt" and kind.inner is not None:
        kind = kind.inner
    return typing.cast(type, kind.typ) if kind.tag == "struct" else None


_S = TypeVar("_S")
_A = TypeVar("_A")
_B = TypeVar("_B")
_R = TypeVar("_R")


def _lazy_pair(
    make: Callable[[], Callable[[_A, _B], _R]], ns: dict[str, object], key: str
) -> Callable[[_A, _B], _R]:
    """A two-argument converter built on first call (a struct may hold its own type), which
    then replaces itself as ``ns[key]`` (the generated code's global)."""

    def call(a: _A, b: _B) -> _R:
        built = make()
        ns[key] = built
        return built(a, b)

    return call


def _diff_writer(cls: type) -> Callable[[object, object], dict[str, object]]:
    """``convert(base, o)``: the wire form of the fields of ``o`` that differ from ``base``'s.

    A struct field present on both sides is itself sent as a diff (only its changed fields)."""
    fn = _diff_cache.get(cls)
    if fn is not None:
        return fn
    with _lock:
        ns: dict[str, object] = {"_strict": _equal_is_strict}
        lines = ["def convert(b, o):", "    d = {}"]
        for fp in _plan(cls):
            full = _out_expr(fp.kind, "v", ns, False, 0)
            lines.append(f"    v = o.{fp.name}")
            lines.append(f"    w = b.{fp.name}")
            if fp.kind.tag == "map":  # equal is not enough: a map in another order differs
                lines.append("    if v is not w and (v != w or (v and not _strict(v, w))):")
            elif _may_hide(fp.kind):  # nor for a -0.0, or a struct that holds a map or a float
                lines.append("    if v is not w and (v != w or not _strict(v, w)):")
            else:
                lines.append("    if v is not w and v != w:")
            nested = _nested_struct(fp.kind)
            if nested is None:
                lines.append(f"        d[{fp.name!r}] = {full}")
            else:
                key = f"_d{len(ns)}"
                ns[key] = _lazy_pair(functools.partial(_diff_writer, nested), ns, key)
                lines.append(f"        d[{fp.name!r}] = {full} if v is None or w is None else {key}(w, v)")
        lines.append("    return d")
        exec("\n".join(lines) + "\n", ns)
        diff = typing.cast(Callable[[object, object], dict[str, object]], ns["convert"])
        _diff_cache[cls] = diff
        return diff


_OverFn = Callable[[Mapping[str, object], object], object]
_Hook = Callable[[typing.Never], object]  # a value read, to its stored form (called by generated code)
_Hooks = Mapping[type, Mapping[str, _Hook]]
_MAX_KEYED_READERS = 4096  # (class, keys) readers kept; a real workload has a handful
_NO_HOOKS: _Hooks = {}


def _over_reader(cls: type, keys: tuple[str, ...], hooks: _Hooks = _NO_HOOKS) -> _OverFn:
    """``convert(d, base)`` for diffs ``d`` with exactly ``keys``: the fields in ``keys``
    converted from ``d`` (a struct field both sides have is read as a diff over ``base``'s,
    see :func:`_diff_writer`), every other field shared with ``base``, built by one
    :func:`replacer` call. The allocations of a plan all differ from their base in the same
    few fields, so one reader serves them all. Keys that are not fields (written by a newer
    version) are skipped, as :func:`from_wire` skips them. With ``hooks`` (an
    :class:`OverReader`'s), a field read goes through its hook (``hooks[cls][name]``), but a
    struct field read as a diff whose class has hooks of its own: that one is read with them."""
    cache = _over_cache if hooks is _NO_HOOKS else None
    if cache is not None:
        fn = cache.get((cls, keys))
        if fn is not None:
            return fn
    with _lock:
        plans = {fp.name: fp for fp in _plan(cls)}
        names = tuple(k for k in keys if k in plans)
        try:
            rep: object = replacer(cls, *names)
        except TypeError:  # not slotted: the dataclass builds the copy
            rep = functools.partial(_plain_replace, names)
        ns: dict[str, object] = {"_rep": rep}
        own = hooks.get(cls, {})
        lines = ["def convert(d, b):"]
        for i, name in enumerate(names):
            fp = plans[name]
            conv = _in_expr(fp.kind, "v", ns, 0)
            hook = own.get(name)
            if hook is not None:
                ns[f"_h{i}"] = hook
                if conv == "dict(v)":  # a map of plain values: the hook gets the wire map, to copy
                    conv = "v"
                conv = f"_h{i}({conv})" if fp.kind.tag != "opt" else f"(None if v is None else _h{i}({conv}))"
            lines.append(f"    v = d[{name!r}]")
            nested = _nested_struct(fp.kind)
            if nested is None:
                lines.append(f"    a{i} = {conv}")
            else:
                key = f"_o{len(ns)}"
                if nested in hooks:  # its fields go through their own hooks
                    ns[key] = functools.partial(_hooked_readers[id(hooks)].read, nested)
                    over_expr = f"{key}(v, w)"
                else:
                    ns[key] = functools.partial(from_wire_over, nested)
                    over_expr = f"{key}(v, w)" if hook is None else f"_h{i}({key}(v, w))"
                lines.append(f"    w = b.{name}")
                lines.append(f"    a{i} = {conv} if v is None or w is None else {over_expr}")
        lines.append(f"    return _rep(b{''.join(f', a{i}' for i in range(len(names)))})")
        exec("\n".join(lines) + "\n", ns)
        over = typing.cast(_OverFn, ns["convert"])
        if cache is not None:
            if len(cache) >= _MAX_KEYED_READERS:
                cache.clear()
            cache[(cls, keys)] = over
        return over


_hooked_readers: dict[int, OverReader] = {}  # id(hooks) -> its reader (readers live for good)


class OverReader:
    """:func:`from_wire_over` that passes some fields through a function as they are read, in
    the same copy: ``hooks[cls][field](value)`` for a field of ``cls`` read (but a struct field
    read as a diff over the base's, of a class with hooks, is read with those, field by field:
    one copy of it, not two). A map of plain values is handed to its hook as it came off the
    wire, not copied first: the hook must make the copy kept (an allocation's scores, one map
    per allocation, were copied twice). The fields
    the diff leaves out are the base's, untouched: the hooks are for a base that went through
    them already (a restore compacts each allocation it decodes over the one before: the
    fields that changed, with one copy of the allocation instead of two).

    Make one per set of hooks, at import time (each is kept for good, with its readers)."""

    __slots__ = ("_hooks", "_readers")

    def __init__(self, hooks: _Hooks) -> None:
        self._hooks = {cls: dict(fields) for cls, fields in hooks.items()}
        self._readers: dict[tuple[type, tuple[str, ...]], _OverFn] = {}
        _hooked_readers[id(self._hooks)] = self

    def read(self, cls: type[T], diff: Mapping[str, object], base: T) -> T:
        """``base`` with the fields of ``diff`` (a :func:`to_wire_diff`) read through the hooks."""
        keys = tuple(diff)
        fn = self._readers.get((cls, keys))
        if fn is None:
            if len(self._readers) >= _MAX_KEYED_READERS:
                self._readers.clear()
            fn = self._readers[(cls, keys)] = _over_reader(cls, keys, self._hooks)
        return typing.cast(T, fn(diff, base))


def _plain_replace(names: tuple[str, ...], obj: object, *values: object) -> object:
    return dataclasses.replace(obj, **dict(zip(names, values, strict=True)))  # type: ignore[type-var]


def to_wire_diff(base: T, obj: T) -> dict[str, object]:
    """The :func:`to_wire` form of the fields of ``obj`` that differ from ``base``'s (compared
    by identity first, then :func:`strict_equal`: a map in another key order or a -0.0 is a
    difference); only those are converted. A struct-valued field that
    both have is sent as its own diff, so a nested struct that differs in one field (an
    allocation's metrics) costs that field, not the whole struct.

    With :func:`from_wire_over` it sends many similar structs (the allocations of one plan) as
    one base and small differences.
    """
    return _diff_writer(type(obj))(base, obj)


def from_wire_over(cls: type[T], diff: Mapping[str, object], base: T) -> T:
    """Rebuild a struct from a :func:`to_wire_diff` against ``base`` (an instance of ``cls``).

    Fields missing from ``diff`` share ``base``'s values (structs are frozen, so sharing is safe).
    """
    return typing.cast(T, _over_reader(cls, tuple(diff))(diff, base))


class Replacer(Protocol[_S]):
    def __call__(self, obj: _S, /, *values: object) -> _S: ...


def replacer(cls: type[T], *names: str) -> Replacer[T]:
    """``fn(obj, *values)``: a new ``cls`` equal to ``obj`` but for the fields ``names``, which
    take ``values`` in order — ``dataclasses.replace(obj, **dict(zip(names, values)))`` at a
    fifth of its cost (the plan applier stamps every placement it stores with it).

    The copy is built like the dataclass's own ``__init__`` builds an instance (each slot set
    once, on the new object); ``obj`` is not touched. Only for slotted dataclasses without a
    ``__post_init__`` (there is nothing to re-check: every value is one ``obj`` already held,
    or a given one of the field's type).
    """
    key = (cls, names)
    fn = _replacer_cache.get(key)
    if fn is not None:
        return typing.cast(Replacer[T], fn)
    if "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__"):
        raise TypeError(f"replacer: {cls.__name__} is not a slotted dataclass without __post_init__")
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = set(names) - set(fields)
    if unknown:
        raise TypeError(f"replacer: {cls.__name__} has no field {sorted(unknown)}")
    with _lock:
        ns: dict[str, object] = {"_cls": cls, "_new": object.__new__}
        params = [f"v{i}" for i in range(len(names))]
        lines = [f"def replace(o, {', '.join(params)}):", "    n = _new(_cls)"]
        for i, name in enumerate(fields):
            ns[f"_s{i}"] = cls.__dict__[name].__set__  # the slot's member descriptor
            value = f"v{names.index(name)}" if name in names else f"o.{name}"
            lines.append(f"    _s{i}(n, {value})")
        lines.append("    return n")
        exec("\n".join(lines) + "\n", ns)
        fn = ns["replace"]
        _replacer_cache[key] = fn
        return typing.cast(Replacer[T], fn)


_PLAIN_REPLACE = object()  # cache mark: the class is not slotted, dataclasses.replace it is


def fast_replace(obj: T, /, **changes: object) -> T:
    """``dataclasses.replace(obj, **changes)``, through a generated :func:`replacer` for
    ``obj``'s class and these field names (cached): the FSM and the scheduler copy an
    evaluation or an allocation with a few fields changed for every one they write. Classes
    :func:`replacer` does not take go through ``dataclasses.replace``, as do unknown names
    (which raise its ``TypeError``)."""
    key = (type(obj), tuple(changes))
    fn = _replacer_cache.get(key)
    if fn is None:
        try:
            fn = replacer(type(obj), *changes)
        except TypeError:
            fn = _replacer_cache[key] = _PLAIN_REPLACE
    if fn is _PLAIN_REPLACE:
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    return typing.cast(Replacer[T], fn)(obj, *changes.values())

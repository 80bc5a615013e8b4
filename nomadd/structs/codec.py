"""Conversion of frozen struct dataclasses to and from their two wire shapes.

* **wire** (``to_wire`` / ``from_wire``, ``pack`` / ``unpack``): snake_case field names, msgpack,
  for Raft entries and the internal RPC. ``from_wire`` trusts its input (it was written by
  ``to_wire``) and only converts nested structs, tuples and enums; unknown keys are skipped so an
  older node can read a newer entry.
* **api** (``to_api`` / ``from_api``): Nomad's HTTP JSON with PascalCase names. The API name of a
  field is derived once from its snake_case name (``node_id`` -> ``NodeID``, acronyms in
  ``_ACRONYMS`` are upper-cased) unless the field sets ``metadata=api("CPU")``. ``from_api``
  ignores unknown keys (as Nomad does), treats ``null`` like a missing key for fields that are not
  optional, and raises :class:`ValidationError` naming the path of a wrongly typed value, e.g.
  ``TaskGroups[0].Tasks[1].Resources.MemoryMB: expected integer``. Integers must fit in 64 bits
  and numbers be finite (msgpack and Nomad's Go structs hold nothing else), also inside
  free-form ``object`` values; ``from_wire_checked`` applies the same checks to RPC input.

Supported field types: ``str int float bool bytes object``, ``StrEnum``/``IntEnum``, nested
dataclasses, ``tuple[X, ...]``, ``Mapping[str, X]``/``dict[str, X]`` and ``X | None``. ``object``
fields (a task's driver ``Config``) hold any JSON value and are passed through unchanged.

Per-class conversion functions are generated once (source compiled with ``exec``, like
``dataclasses`` does) and cached, so converting a struct costs about one dict build per level.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import math
import re
import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import TypeVar

import msgpack  # type: ignore[import-untyped,unused-ignore]

from nomadd.structs.construct import Constructor, constructor
from nomadd.structs.errors import ValidationError

__all__ = [
    "API_NAME_KEY",
    "INT64_MAX",
    "INT64_MIN",
    "Constructor",
    "api",
    "api_name",
    "constructor",
    "from_api",
    "from_wire",
    "from_wire_checked",
    "pack",
    "to_api",
    "to_wire",
    "unpack",
]

T = TypeVar("T")

API_NAME_KEY = "api"
"""Field metadata key holding the field's HTTP JSON name (see :func:`api`)."""

# Upper-cased whole when they are a word of a snake_case name: node_id -> NodeID, disk_mb -> DiskMB
_ACRONYMS = frozenset({"id", "ids", "mb", "http", "tg", "ttl", "ip", "url", "tls", "acl", "uuid"})
_SPECIAL = {"ids": "IDs"}


def api(name: str) -> dict[str, str]:
    """Field metadata that sets a field's API name: ``field(default=0, metadata=api("CPU"))``."""
    return {API_NAME_KEY: name}


def api_name(snake: str) -> str:
    """The default PascalCase API name of a snake_case field name."""
    parts = []
    for word in snake.split("_"):
        if word in _SPECIAL:
            parts.append(_SPECIAL[word])
        elif word in _ACRONYMS:
            parts.append(word.upper())
        else:
            parts.append(word[:1].upper() + word[1:])
    return "".join(parts)


class _PathError(Exception):
    """Raised inside ``from_api`` converters; collects the path on the way up."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


# --------------------------------------------------------------------------- type analysis

_Conv = Callable[[object], object]


@dataclasses.dataclass(frozen=True, slots=True)
class _Kind:
    """What a resolved annotation is, in the terms the generators need."""

    tag: str  # prim | any | enum | struct | tuple | map | opt
    typ: object = None
    inner: _Kind | None = None


_PRIMS: dict[object, str] = {str: "str", int: "int", float: "float", bool: "bool", bytes: "bytes"}


def _analyse(tp: object) -> _Kind:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"codec: unsupported union {tp!r}")
        return _Kind("opt", None, _analyse(args[0]))
    if origin is tuple:
        targs = typing.get_args(tp)
        if len(targs) != 2 or targs[1] is not Ellipsis:
            raise TypeError(f"codec: only tuple[X, ...] is supported, got {tp!r}")
        return _Kind("tuple", None, _analyse(targs[0]))
    if origin in (dict, collections.abc.Mapping):
        key, value = typing.get_args(tp)
        if key is not str:
            raise TypeError(f"codec: mapping keys must be str, got {tp!r}")
        return _Kind("map", None, _analyse(value))
    if tp is object:
        return _Kind("any")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _Kind("enum", tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _Kind("struct", tp)
    if tp in _PRIMS:
        return _Kind("prim", tp)
    raise TypeError(f"codec: unsupported field type {tp!r}")


def _identity_out(kind: _Kind) -> bool:
    """True when the value needs no conversion on the way out (to_wire/to_api)."""
    if kind.tag in ("prim", "any"):
        return True
    if kind.tag == "enum":
        return issubclass(kind.typ, str)  # type: ignore[arg-type]
    if kind.tag in ("tuple", "map", "opt"):
        assert kind.inner is not None
        return _identity_out(kind.inner)
    return False


def _identity_in(kind: _Kind) -> bool:
    """True when a wire value can be stored as is (only plain scalars)."""
    return kind.tag in ("prim", "any")


# --------------------------------------------------------------------------- generated converters

_lock = threading.RLock()
_to_wire_cache: dict[type, _Conv] = {}
_to_api_cache: dict[type, _Conv] = {}
_from_wire_cache: dict[type, _Conv] = {}
_from_api_cache: dict[tuple[type, bool, bool], _Conv] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    api: str
    kind: _Kind
    has_default: bool


_plans: dict[type, tuple[_FieldPlan, ...]] = {}


def _plan(cls: type) -> tuple[_FieldPlan, ...]:
    plan = _plans.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        items = []
        for f in dataclasses.fields(cls):
            items.append(
                _FieldPlan(
                    name=f.name,
                    api=f.metadata.get(API_NAME_KEY) or api_name(f.name),
                    kind=_analyse(hints[f.name]),
                    has_default=f.default is not dataclasses.MISSING
                    or f.default_factory is not dataclasses.MISSING,
                )
            )
        _plans[cls] = plan = tuple(items)
    return plan


def _out_expr(kind: _Kind, expr: str, ns: dict[str, object], api_shape: bool, depth: int) -> str:
    """Python expression converting ``expr`` of ``kind`` for to_wire/to_api."""
    tag = kind.tag
    if tag in ("prim", "any"):
        return expr
    if tag == "enum":
        return expr if _identity_out(kind) else f"{expr}.value"
    if tag == "struct":
        key = f"_s{len(ns)}"
        ns[key] = _lazy_out(kind.typ, api_shape, ns, key)  # type: ignore[arg-type]
        return f"{key}({expr})"
    assert kind.inner is not None
    if tag == "opt":
        inner_expr = _out_expr(kind.inner, expr, ns, api_shape, depth)
        return expr if inner_expr == expr else f"(None if {expr} is None else {inner_expr})"
    var = f"_v{depth}"
    inner = _out_expr(kind.inner, var, ns, api_shape, depth + 1)
    if tag == "tuple":
        return f"list({expr})" if inner == var else f"[{inner} for {var} in {expr}]"
    if inner == var:
        return expr
    return f"{{_k{depth}: {inner} for _k{depth}, {var} in {expr}.items()}}"


def _lazy_out(cls: type, api_shape: bool, ns: dict[str, object], key: str) -> _Conv:
    """A converter that compiles ``cls``'s converter on first use (handles recursive types),
    then puts it in place of itself as ``ns[key]`` (the generated code's global): later calls
    go to it directly."""

    def convert(obj: object) -> object:
        conv = ns[key] = _out_converter(cls, api_shape)
        return conv(obj)

    return convert


def _out_converter(cls: type, api_shape: bool) -> _Conv:
    cache = _to_api_cache if api_shape else _to_wire_cache
    fn = cache.get(cls)
    if fn is not None:
        return fn
    with _lock:
        ns: dict[str, object] = {}
        items = []
        for fp in _plan(cls):
            key = fp.api if api_shape else fp.name
            items.append(f"{key!r}: {_out_expr(fp.kind, 'o.' + fp.name, ns, api_shape, 0)}")
        if api_shape:  # the keys Nomad always sends that nomadd has no field for, at their zero
            items += [f"{k!r}: {v!r}" for k, v in getattr(cls, "NOMAD_ONLY", {}).items()]
        src = "def convert(o):\n    return {" + ", ".join(items) + "}\n"
        exec(src, ns)
        fn = typing.cast(_Conv, ns["convert"])
        cache[cls] = fn
        return fn


def _in_expr(kind: _Kind, expr: str, ns: dict[str, object], depth: int) -> str:
    """Python expression converting a trusted wire value ``expr`` of ``kind`` (from_wire)."""
    if _identity_in(kind):
        return expr
    if kind.tag == "enum":
        key = f"_e{len(ns)}"
        ns[key] = typing.cast(type[enum.Enum], kind.typ)._value2member_map_
        return f"{key}[{expr}]"
    if kind.tag == "struct":
        key = f"_s{len(ns)}"
        ns[key] = _lazy_in(kind.typ, ns, key)  # type: ignore[arg-type]
        return f"{key}({expr})"
    assert kind.inner is not None
    if kind.tag == "opt":
        return f"(None if {expr} is None else {_in_expr(kind.inner, expr, ns, depth)})"
    var = f"_v{depth}"
    inner = _in_expr(kind.inner, var, ns, depth + 1)
    if kind.tag == "tuple":
        return f"tuple({expr})" if inner == var else f"tuple([{inner} for {var} in {expr}])"
    if inner == var:  # a copy made in C (an allocation's scores: one per node scored)
        return f"dict({expr})"
    return f"{{_k{depth}: {inner} for _k{depth}, {var} in {expr}.items()}}"


def _lazy_in(cls: type, ns: dict[str, object], key: str) -> _Conv:
    """Like :func:`_lazy_out`, for :func:`_wire_reader`."""

    def convert(data: object) -> object:
        conv = ns[key] = _wire_reader(cls)
        return conv(data)

    return convert


def _wire_reader(cls: type) -> _Conv:
    fn = _from_wire_cache.get(cls)
    if fn is not None:
        return fn
    with _lock:
        ns: dict[str, object] = {"_cls": constructor(cls), "_M": _MISSING}
        lines = ["def convert(d):", "    g = d.get"]
        args = []
        for i, (fp, f) in enumerate(zip(_plan(cls), dataclasses.fields(cls), strict=True)):
            conv = _in_expr(fp.kind, "v", ns, 0)
            if f.default is not dataclasses.MISSING:
                ns[f"_d{i}"] = f.default
                fallback = f"_d{i}"
            elif f.default_factory is not dataclasses.MISSING:
                ns[f"_f{i}"] = f.default_factory
                fallback = f"_f{i}()"
            else:
                fallback = ""
            if not fallback:
                lines.append(f"    v = d[{fp.name!r}]")
                lines.append(f"    a{i} = {conv}")
            elif conv == "v" and fallback.startswith("_d"):
                lines.append(f"    a{i} = g({fp.name!r}, {fallback})")
            else:
                lines.append(f"    v = g({fp.name!r}, _M)")
                lines.append(f"    a{i} = {fallback} if v is _M else {conv}")
            args.append(f"{fp.name}=a{i}")
        lines.append(f"    return _cls({', '.join(args)})")
        exec("\n".join(lines) + "\n", ns)
        fn = typing.cast(_Conv, ns["convert"])
        _from_wire_cache[cls] = fn
        return fn


_MISSING = object()
# --------------------------------------------------------------------------- validating API reader


def _describe(kind: _Kind) -> str:
    if kind.tag == "prim":
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            _PRIMS[kind.typ], "bytes"
        )
    if kind.tag == "struct":
        return "object"
    if kind.tag == "map":
        return "object"
    if kind.tag == "tuple":
        return "array"
    return "value"


def _api_conv(kind: _Kind, strict: bool, wire: bool = False) -> _Conv:
    """A validating converter for one API value, or with ``wire`` one wire value (raises _PathError)."""
    tag = kind.tag
    if tag == "any":
        return _check_any
    if tag == "prim":
        typ = kind.typ
        if typ is bool:

            def conv_bool(v: object) -> object:
                if isinstance(v, bool):
                    return v
                raise _PathError("expected boolean")

            return conv_bool
        if typ is int:

            def conv_int(v: object) -> object:
                if isinstance(v, int) and not isinstance(v, bool):
                    if INT64_MIN <= v <= INT64_MAX:
                        return v
                    raise _PathError(_INT_RANGE)
                if isinstance(v, float) and v.is_integer():
                    if INT64_MIN <= v <= INT64_MAX:
                        return int(v)
                    raise _PathError(_INT_RANGE)
                raise _PathError("expected integer")

            return conv_int
        if typ is float:

            def conv_float(v: object) -> object:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    try:
                        out = float(v)
                    except OverflowError:
                        raise _PathError("number out of range") from None
                    if math.isfinite(out):
                        return out
                    raise _PathError("number must be finite")
                raise _PathError("expected number")

            return conv_float
        if typ is str:

            def conv_str(v: object) -> object:
                if isinstance(v, str):
                    return v
                raise _PathError("expected string")

            return conv_str

        def conv_bytes(v: object) -> object:
            if isinstance(v, bytes):
                return v
            raise _PathError("expected bytes")

        return conv_bytes
    if tag == "enum":
        enum_cls = typing.cast(type[enum.Enum], kind.typ)
        allowed = ", ".join(str(m.value) for m in enum_cls)

        def conv_enum(v: object) -> object:
            try:
                return enum_cls(v)
            except ValueError:
                raise _PathError(f"invalid value {v!r} (expected one of {allowed})") from None

        return conv_enum
    if tag == "struct":
        cls = typing.cast(type, kind.typ)
        return lambda v: _api_reader(cls, strict, wire)(v)
    assert kind.inner is not None
    inner = _api_conv(kind.inner, strict, wire)
    if tag == "opt":
        return lambda v: None if v is None else inner(v)
    if tag == "tuple":
        want = _describe(kind)

        def conv_tuple(v: object) -> object:
            if not isinstance(v, (list, tuple)):
                raise _PathError(f"expected {want}")
            out = []
            for i, item in enumerate(v):
                try:
                    out.append(inner(item))
                except _PathError as err:
                    err.path.append(f"[{i}]")
                    raise
            return tuple(out)

        return conv_tuple

    def conv_map(v: object) -> object:
        if not isinstance(v, Mapping):
            raise _PathError("expected object")
        out = {}
        for k, item in v.items():
            if not isinstance(k, str):
                raise _PathError("expected string keys")
            try:
                out[k] = inner(item)
            except _PathError as err:
                err.path.append(f"[{k!r}]" if not _SIMPLE_KEY.match(k) else f".{k}")
                raise
        return out

    return conv_map


_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_INT_RANGE = "integer out of the 64-bit range"
_MAX_ANY_DEPTH = 64


def _check_any(v: object, depth: int = 0) -> object:
    """Pass a free-form value (a driver's ``Config``) through after checking that it can be
    stored: integers in 64-bit range, finite floats, string keys, bounded nesting."""
    if isinstance(v, bool) or v is None or isinstance(v, str | bytes):
        return v
    if isinstance(v, int):
        if INT64_MIN <= v <= INT64_MAX:
            return v
        raise _PathError(_INT_RANGE)
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        raise _PathError("number must be finite")
    if depth >= _MAX_ANY_DEPTH:
        raise _PathError(f"nested deeper than {_MAX_ANY_DEPTH} levels")
    if isinstance(v, list | tuple):
        for i, item in enumerate(v):
            try:
                _check_any(item, depth + 1)
            except _PathError as err:
                err.path.append(f"[{i}]")
                raise
        return v
    if isinstance(v, Mapping):
        for k, item in v.items():
            if not isinstance(k, str):
                raise _PathError("expected string keys")
            try:
                _check_any(item, depth + 1)
            except _PathError as err:
                err.path.append(f"[{k!r}]" if not _SIMPLE_KEY.match(k) else f".{k}")
                raise
        return v
    raise _PathError(f"unsupported value of type {type(v).__name__}")


def _enum_field(kind: _Kind) -> bool:
    if kind.tag == "opt":
        assert kind.inner is not None
        kind = kind.inner
    return kind.tag == "enum"


def _api_reader(cls: type, strict: bool, wire: bool = False) -> _Conv:
    fn = _from_api_cache.get((cls, strict, wire))
    if fn is not None:
        return fn
    with _lock:
        fields = [
            (
                fp.name if wire else fp.api,
                fp.name,
                _api_conv(fp.kind, strict, wire),
                fp.kind.tag == "opt",
                _enum_field(fp.kind),
            )
            for fp in _plan(cls)
        ]
        known = frozenset(f[0] for f in fields)

        def convert(data: object) -> object:
            if not isinstance(data, Mapping):
                raise _PathError("expected object")
            if strict:
                for key in data:
                    if key not in known:
                        err = _PathError("unknown field")
                        err.path.append(f".{key}")
                        raise err
            kw = {}
            for api_key, name, conv, optional, is_enum in fields:
                if api_key not in data:
                    continue
                value = data[api_key]
                if value is None and not optional:
                    continue  # null means "not set": the field default applies
                if is_enum and value == "":
                    continue  # Go's zero string: an unset status, mode or type
                try:
                    kw[name] = conv(value)
                except _PathError as err:
                    err.path.append(f".{api_key}")
                    raise
            try:
                return cls(**kw)
            except TypeError as err:  # a required field is missing
                raise _PathError(f"missing required field ({err})") from None

        _from_api_cache[(cls, strict, wire)] = convert
        return convert


# --------------------------------------------------------------------------- public functions


def to_wire(obj: object) -> dict[str, object]:
    """The snake_case dict of a struct (nested structs too), ready for msgpack."""
    return typing.cast(dict[str, object], _out_converter(type(obj), False)(obj))


def from_wire(cls: type[T], data: Mapping[str, object]) -> T:
    """Rebuild a struct from :func:`to_wire` output. Trusts its input; ignores unknown keys."""
    return typing.cast(T, _wire_reader(cls)(data))


def from_wire_checked(cls: type[T], data: object, *, path: str = "") -> T:
    """Like :func:`from_wire` for input that is not trusted (an RPC request from the network):
    every value is type-checked as :func:`from_api` does, and a bad one raises
    :class:`ValidationError` naming its path (``job.task_groups[0].count: expected integer``)."""
    try:
        return typing.cast(T, _api_reader(cls, False, True)(data))
    except _PathError as err:
        where = (path + "".join(reversed(err.path))).removeprefix(".")
        raise ValidationError(f"{where}: {err.problem}" if where else err.problem) from None


def to_api(obj: object) -> dict[str, object]:
    """The Nomad HTTP JSON shape (PascalCase names) of a struct."""
    return typing.cast(dict[str, object], _out_converter(type(obj), True)(obj))


def from_api(cls: type[T], data: object, *, path: str = "", strict: bool = False) -> T:
    """Read a struct from Nomad HTTP JSON, validating types.

    Unknown keys are ignored, as Nomad's API does; with ``strict=True`` (job files) an unknown
    key is an error naming it, e.g. ``Job.TaskGroups[0].Cont: unknown field``. Raises
    :class:`ValidationError` whose message starts with the path of the bad value (prefixed
    with ``path`` when given, e.g. ``"Job"``).
    """
    try:
        return typing.cast(T, _api_reader(cls, strict)(data))
    except _PathError as err:
        where = path + "".join(reversed(err.path))
        where = where.removeprefix(".")
        raise ValidationError(f"{where}: {err.problem}" if where else err.problem) from None


def pack(obj: object) -> bytes:
    """msgpack bytes of a struct (its :func:`to_wire` dict)."""
    return typing.cast(bytes, msgpack.packb(to_wire(obj), use_bin_type=True))


def unpack(cls: type[T], data: bytes) -> T:
    """Inverse of :func:`pack`."""
    return from_wire(cls, msgpack.unpackb(data, raw=False, strict_map_key=False))

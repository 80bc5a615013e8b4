"""Building frozen struct instances without their dataclass ``__init__``.

A frozen dataclass's generated ``__init__`` sets every field through ``object.__setattr__``;
decoding Raft entries and the scheduler build thousands of allocations a second, so the codec
(:mod:`nomadd.structs.codec`) and the scheduler build them through :func:`constructor`, which
sets each slot once through its descriptor, as :func:`nomadd.structs.codec_diff.replacer` does.
"""

from __future__ import annotations

import dataclasses
import threading
import types
import typing
from typing import Protocol, TypeVar

__all__ = ["Constructor", "constructor"]

T = TypeVar("T")
_MISSING = object()
_lock = threading.Lock()
_ctor_cache: dict[type, object] = {}
_T_co = TypeVar("_T_co", covariant=True)


class Constructor(Protocol[_T_co]):
    def __call__(self, **fields: object) -> _T_co: ...


def _slot_setter(cls: type, name: str) -> object | None:
    """The ``__set__`` of the slot ``name`` of ``cls`` or a base class (None: not a slot)."""
    for klass in cls.__mro__:
        attr = klass.__dict__.get(name)
        if attr is not None:
            return attr.__set__ if isinstance(attr, types.MemberDescriptorType) else None
    return None


def constructor(cls: type[T]) -> Constructor[T]:
    """A function that builds a ``cls`` exactly as ``cls(**fields)`` does (same keyword
    parameters and defaults), at about half the cost: a frozen dataclass's ``__init__`` sets
    every field through ``object.__setattr__``, this sets each slot once through its
    descriptor (as :func:`nomadd.structs.codec_diff.replacer` does). The instance is as
    frozen as any other. Decoding and the scheduler build thousands of allocations a second.

    Only for slotted dataclasses whose fields are all ``init`` fields, with the ``__init__``
    dataclasses generates and no ``__post_init__``; for any other class, ``cls`` itself (its
    ``__init__`` runs).
    """
    fn = _ctor_cache.get(cls)
    if fn is not None:
        return typing.cast(Constructor[T], fn)
    with _lock:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        setters = [_slot_setter(cls, f.name) for f in fields]
        init = getattr(cls.__dict__.get("__init__"), "__code__", None)
        if (
            hasattr(cls, "__post_init__")
            or init is None
            or init.co_filename != "<string>"  # not the dataclass's generated __init__
            or any(s is None for s in setters)
            or any(not f.init or f.name.startswith("_") for f in fields)
        ):
            _ctor_cache[cls] = cls
            return typing.cast(Constructor[T], cls)
        ns: dict[str, object] = {"_cls": cls, "_new": object.__new__, "_M": _MISSING}
        params, body = [], ["    n_ = _new(_cls)"]
        for i, (f, setter) in enumerate(zip(fields, setters, strict=True)):
            ns[f"_s{i}"] = setter
            value = f.name
            if f.default is not dataclasses.MISSING:
                ns[f"_d{i}"] = f.default
                params.append(f"{f.name}=_d{i}")
            elif f.default_factory is not dataclasses.MISSING:
                ns[f"_f{i}"] = f.default_factory
                params.append(f"{f.name}=_M")
                value = f"_f{i}() if {f.name} is _M else {f.name}"
            else:
                params.append(f.name)
            body.append(f"    _s{i}(n_, {value})")
        src = f"def make(*, {', '.join(params)}):\n" + "\n".join([*body, "    return n_"]) + "\n"
        exec(src, ns)
        _ctor_cache[cls] = ns["make"]
        return typing.cast(Constructor[T], ns["make"])

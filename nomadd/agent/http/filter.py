"""``?filter=``: Nomad's filter expressions (the go-bexpr grammar) over what a list returns.

The grammar, as go-bexpr defines it::

    expr     := or
    or       := and ("or" or)?
    and      := not ("and" and)?
    not      := "not" not | "(" or ")" | match
    match    := selector ("==" | "!=" | "contains" | "not contains"
                          | "matches" | "not matches") value
              | selector "is" ["not"] "empty"
              | value ("in" | "not in") selector
    selector := ident ("." ident | "." digits | "[" string "]")*      ident: [a-zA-Z][a-zA-Z0-9_/]*
    value    := number | "string" | `raw string` | selector (taken as its text)

A selector walks the API object by its JSON keys (``Status``, ``Meta.team``, ``Meta["a.b"]``,
``TaskGroups.0.Name``); Nomad walks its Go structs, whose field names are the same keys. Values
are compared as the field's type: a number field compares numerically, a boolean field against
``true``/``false``. ``contains``/``in`` look in a list's items, a map's keys or a string;
``is empty`` holds for a missing, null, empty string, list or map. A selector that names nothing
in an object makes its match false (and its negation true), where Nomad, checking selectors
against Go types, could also refuse the expression.

Bounds: an expression is at most :data:`MAX_FILTER_BYTES`; its regular expressions share one
time budget per request (:data:`REGEX_BUDGET_S`, enforced by the ``regex`` module's timeout), so
``(a|aa)+$`` against a long field, or a slow pattern over many objects, answers 400 instead of
holding the event loop.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import regex

from nomadd.structs.errors import ValidationError

__all__ = ["MAX_FILTER_BYTES", "Expr", "apply_filter", "parse_filter"]

MAX_FILTER_BYTES = 4096
MAX_DEPTH = 64  # nesting of not/parentheses
REGEX_BUDGET_S = 0.25  # all the matches of one request together; past it the request is refused

_TOKEN = re.compile(
    r"""(?:
      (?P<op>==|!=|\(|\)|\[|\]|\.|,)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?![A-Za-z0-9_/]))
    | (?P<ident>[A-Za-z][A-Za-z0-9_/]*)
    | (?P<digits>[0-9]+)
    )""",
    re.X,
)
_MISSING = object()


class _Tok:
    __slots__ = ("kind", "pos", "text")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind, self.text, self.pos = kind, text, pos


def _error(msg: str) -> ValidationError:
    return ValidationError(f"failed to read filter expression: {msg}")


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return out
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise _error(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()


def _unquote(tok: _Tok) -> str:
    if tok.kind == "raw":
        return tok.text[1:-1]
    try:
        value = json.loads(tok.text)
    except ValueError:
        raise _error(f"invalid string literal at position {tok.pos}") from None
    assert isinstance(value, str)
    return value


Expr = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class _Selector:
    path: tuple[str, ...]

    def text(self) -> str:
        return ".".join(self.path)

    def resolve(self, obj: Any) -> Any:
        for part in self.path:
            if isinstance(obj, dict):
                obj = obj.get(part, _MISSING)
            elif isinstance(obj, list) and part.isdigit():
                obj = obj[int(part)] if int(part) < len(obj) else _MISSING
            else:
                return _MISSING
            if obj is _MISSING:
                return _MISSING
        return obj


def _equal(actual: Any, raw: str) -> bool:
    if isinstance(actual, bool):
        return raw in ("true", "false") and actual == (raw == "true")
    if isinstance(actual, int | float):
        try:
            return float(actual) == float(raw)
        except ValueError:
            return False
    if isinstance(actual, str):
        return actual == raw
    if actual is None:
        return raw == ""
    return False


def _contains(actual: Any, raw: str) -> bool:
    if isinstance(actual, list):
        return any(_equal(item, raw) for item in actual)
    if isinstance(actual, dict):
        return raw in actual
    if isinstance(actual, str):
        return raw in actual
    return False


def _empty(actual: Any) -> bool:
    return (
        actual is _MISSING or actual is None or (isinstance(actual, str | list | dict) and len(actual) == 0)
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        self.deadline = 0.0  # monotonic time the regular expressions must finish by

    # ---- token helpers -----------------------------------------------------------------------
    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def word(self, k: int = 0) -> str:
        t = self.peek(k)
        return t.text if t is not None and t.kind == "ident" else ""

    def take(self, text: str) -> bool:
        t = self.peek()
        if t is not None and t.text == text and t.kind in ("op", "ident"):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise _error(f"expected {text!r} {self.where()}")

    def where(self) -> str:
        t = self.peek()
        return f"at position {t.pos} ({t.text!r})" if t is not None else "at the end"

    # ---- grammar -----------------------------------------------------------------------------
    def parse(self) -> Expr:
        if not self.toks:
            raise _error("empty expression")
        expr = self.or_()
        if self.peek() is not None:
            raise _error(f"unexpected {self.where()}")
        return expr

    def or_(self) -> Expr:
        left = self.and_()
        if self.take("or"):
            right = self.or_()
            return lambda o: left(o) or right(o)
        return left

    def and_(self) -> Expr:
        left = self.not_()
        if self.take("and"):
            right = self.and_()
            return lambda o: left(o) and right(o)
        return left

    def not_(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(f"nested deeper than {MAX_DEPTH}")
        try:
            if self.take("not"):  # at the start of an expression "not" can only be unary
                inner = self.not_()
                return lambda o: not inner(o)
            if self.take("("):
                expr = self.or_()
                self.expect(")")
                return expr
            return self.match()
        finally:
            self.depth -= 1

    def selector(self) -> _Selector:
        t = self.peek()
        if t is None or t.kind != "ident":
            raise _error(f"expected a selector {self.where()}")
        self.i += 1
        path = [t.text]
        while True:
            if self.take("."):
                t = self.peek()
                if (
                    t is None
                    or t.kind not in ("ident", "digits", "num")
                    or not t.text.replace("_", "a").isalnum()
                ):
                    raise _error(f"expected a field name {self.where()}")
                self.i += 1
                path.append(t.text)
            elif self.take("["):
                t = self.peek()
                if t is None or t.kind not in ("str", "raw"):
                    raise _error(f"Invalid index {self.where()}")
                self.i += 1
                path.append(_unquote(t))
                self.expect("]")
            else:
                return _Selector(tuple(path))

    def value(self) -> str:
        t = self.peek()
        if t is None:
            raise _error("expected a value at the end")
        if t.kind in ("str", "raw"):
            self.i += 1
            return _unquote(t)
        if t.kind in ("num", "digits"):
            self.i += 1
            return t.text
        return self.selector().text()

    def match(self) -> Expr:
        t = self.peek()
        if t is not None and t.kind in ("str", "raw", "num", "digits"):
            raw = self.value()
            return self.membership(raw)
        sel = self.selector()
        if self.word() == "in" or (self.word() == "not" and self.word(1) == "in"):
            return self.membership(sel.text())
        negate = self.word() == "not" and self.word(1) in ("contains", "matches")
        if negate:
            self.i += 1
        if self.take("=="):
            raw = self.value()
            return lambda o: (v := sel.resolve(o)) is not _MISSING and _equal(v, raw)
        if self.take("!="):
            raw = self.value()
            return lambda o: (v := sel.resolve(o)) is _MISSING or not _equal(v, raw)
        if self.take("contains"):
            raw = self.value()
            return lambda o: _contains(sel.resolve(o), raw) != negate
        if self.take("matches"):
            pattern = self.pattern(self.value())
            return lambda o: self.search(pattern, sel.resolve(o)) != negate
        if self.take("is"):
            empty_negated = self.take("not")
            self.expect("empty")
            return lambda o: _empty(sel.resolve(o)) != empty_negated
        raise _error(f"expected an operator after {sel.text()!r} {self.where()}")

    def membership(self, raw: str) -> Expr:
        negate = self.take("not")
        self.expect("in")
        sel = self.selector()
        return lambda o: _contains(sel.resolve(o), raw) != negate

    @staticmethod
    def pattern(text: str) -> regex.Pattern[str]:
        try:
            return regex.compile(text)
        except regex.error as err:
            raise _error(f"invalid regular expression {text[:64]!r}: {err}") from None

    def search(self, pattern: regex.Pattern[str], actual: Any) -> bool:
        if not isinstance(actual, str):
            return False
        try:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            return pattern.search(actual, timeout=left) is not None
        except TimeoutError:
            raise _error(f"regular expression {pattern.pattern[:64]!r} took too long") from None


def _parser(text: str) -> _Parser:
    if len(text.encode()) > MAX_FILTER_BYTES:
        raise _error(f"longer than {MAX_FILTER_BYTES} bytes")
    return _Parser(text)


def parse_filter(text: str) -> Expr:
    """Checks the expression: a 400 naming the problem, or its predicate over API objects
    (with a fresh regular-expression budget)."""
    parser = _parser(text)
    expr = parser.parse()
    parser.deadline = time.monotonic() + REGEX_BUDGET_S
    return expr


def apply_filter(text: str, items: Iterable[Any]) -> list[Any]:
    """The items the expression holds for, in order."""
    expr = parse_filter(text)
    return [item for item in items if expr(item)]

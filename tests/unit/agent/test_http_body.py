"""Request bodies are checked before ``json.loads``: nesting depth (brackets inside strings do not
count), NaN/Infinity refused, UTF-8 only."""

from __future__ import annotations

import pytest

from nomadd.agent.http.body import MAX_JSON_DEPTH, _json_too_deep, _parse_json
from nomadd.structs.errors import ValidationError


def nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


def test_depth_limit_is_exact() -> None:
    assert not _json_too_deep(nested(MAX_JSON_DEPTH))
    assert _json_too_deep(nested(MAX_JSON_DEPTH + 1))
    assert _json_too_deep(b'{"a":' * 100_000)
    assert _json_too_deep(nested(100_000))


def test_brackets_in_strings_and_siblings_do_not_count() -> None:
    inside = b'["' + b"[" * 10_000 + b'\\"' + b"{" * 10_000 + b'"]'
    assert not _json_too_deep(inside)
    assert not _json_too_deep(b"[" + b"[]," * 100_000 + b"[]]")


def test_parse_refuses_deep_nan_and_bad_utf8() -> None:
    with pytest.raises(ValidationError, match="nested deeper than 256 levels"):
        _parse_json(nested(100_000))
    with pytest.raises(ValidationError, match="invalid number NaN"):
        _parse_json(b'{"a": NaN}')
    with pytest.raises(ValidationError, match="invalid number -Infinity"):
        _parse_json(b'{"a": -Infinity}')
    with pytest.raises(ValidationError, match="Failed to parse request body"):
        _parse_json(b'{"a": "\xff"}')
    assert _parse_json(b'{"a": [1, {"b": "[[["}]}') == {"a": [1, {"b": "[[["}]}

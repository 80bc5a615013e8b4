from __future__ import annotations

import pytest

from nomadd.helper.duration import format_duration, parse_duration, parse_duration_ns


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("5m", 300.0),
        ("24h", 86400.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("0", 0.0),
        ("100us", 1e-4),
        ("2m3s", 123.0),
        ("-1s", -1.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "10x", "s", "1h-3m", "ten seconds", "1.2.3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(10, "10s"), (300, "5m0s"), (0.2, "200ms"), (3723, "1h2m3s"), (90, "1m30s"), (1.5, "1.5s"), (0, "0s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1.5s", 1_500_000_000),
        ("1h30m", 5400 * 10**9),
        (".5ms", 500_000),
        ("1.000000001s", 1_000_000_001),
        ("100us", 100_000),
        ("-2m", -120 * 10**9),
    ],
)
def test_parse_duration_ns_is_exact(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("text", [".s", "1..5s", "5 minutes", "1s2"])
def test_parse_duration_ns_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        parse_duration_ns(text)

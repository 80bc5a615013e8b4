from __future__ import annotations

import pytest

from nomadd.agent.duration import format_duration, parse_duration


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


@pytest.mark.parametrize(("seconds", "text"), [(10, "10s"), (300, "5m0s"), (0.2, "200ms"), (3723, "1h2m3s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text

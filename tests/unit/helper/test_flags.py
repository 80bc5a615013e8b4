from __future__ import annotations

import pytest

from nomadd.helper.flags import FlagError, FlagSet


def make() -> FlagSet:
    fs = FlagSet("t")
    fs.bool("dev", "")
    fs.string("data-dir", "")
    fs.int("retry-max", "")
    fs.strings("config", "")
    fs.strings("servers", "", split=",")
    return fs


def test_go_style_forms() -> None:
    values, rest = make().parse(
        [
            "-dev",
            "--data-dir",
            "/x",
            "-retry-max=3",
            "-config",
            "a",
            "-config=b",
            "-servers=a, b",
            "pos",
            "-x",
        ]
    )
    assert values == {
        "dev": True,
        "data-dir": "/x",
        "retry-max": 3,
        "config": ("a", "b"),
        "servers": ("a", "b"),
    }
    assert rest == ["pos", "-x"]


def test_bool_with_value_and_terminator() -> None:
    values, rest = make().parse(["-dev=false", "--", "-config"])
    assert values == {"dev": False}
    assert rest == ["-config"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-nope"], "flag provided but not defined: -nope"),
        (["-data-dir"], "flag needs an argument: -data-dir"),
        (["-retry-max=x"], 'invalid value "x" for flag -retry-max'),
        (["-dev=maybe"], "invalid boolean value"),
    ],
)
def test_errors(args: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message):
        make().parse(args)

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

import pytest

from nomadd.discovery import (
    EXHAUSTED_MESSAGE,
    DiscoveryError,
    Entry,
    PortKind,
    Resolver,
    RetryJoinExhausted,
    retry_join,
    start_join,
)
from nomadd.structs.errors import ConfigError

INTERVAL_S = 0.01


class ScriptedResolver(Resolver):
    """Answers resolve_all from a script: a list of addresses or a DiscoveryError per attempt."""

    def __init__(self, script: list[list[str] | DiscoveryError]) -> None:
        super().__init__()
        self.script = script
        self.calls = 0

    async def resolve_all(self, entries: Iterable[Entry | str], *, port_kind: PortKind = "serf") -> list[str]:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(step, DiscoveryError):
            raise step
        return list(step)


class Joiner:
    """A join callback that accepts only addresses in ``alive``."""

    def __init__(self, alive: set[str], *, raise_on: frozenset[int] = frozenset()) -> None:
        self.alive = alive
        self.raise_on = raise_on
        self.calls: list[list[str]] = []

    async def __call__(self, addresses: list[str]) -> int:
        self.calls.append(addresses)
        if len(self.calls) in self.raise_on:
            raise ConnectionRefusedError("connection refused")
        return sum(1 for a in addresses if a in self.alive)


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_success_first_attempt_logs_completed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nomadd.discovery")
    join = Joiner({"127.0.0.1:4648", "127.0.0.2:4648"})
    n = asyncio.run(
        retry_join(
            ["127.0.0.1", "127.0.0.2:4648", "127.0.0.1"],
            join,
            resolver=Resolver(),
            interval=INTERVAL_S,
            max_attempts=3,
        )
    )
    assert n == 2
    assert join.calls == [["127.0.0.1:4648", "127.0.0.2:4648"]]
    assert any("retry join completed initial_servers=2" in m for m in _messages(caplog, logging.INFO))
    assert not _messages(caplog, logging.WARNING)


def test_retries_until_join_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nomadd.discovery")
    resolver = ScriptedResolver(
        [DiscoveryError("no such name"), ["10.0.0.1:4648"], ["10.0.0.1:4648"], ["10.0.0.2:4648"]]
    )
    join = Joiner({"10.0.0.2:4648"}, raise_on=frozenset({2}))
    n = asyncio.run(
        retry_join(["dns+srv://_x._tcp.example.com"], join, resolver=resolver, interval=INTERVAL_S)
    )
    assert n == 1
    assert resolver.calls == 4  # re-resolved on every attempt
    assert join.calls == [["10.0.0.1:4648"], ["10.0.0.1:4648"], ["10.0.0.2:4648"]]
    warnings = _messages(caplog, logging.WARNING)
    assert len(warnings) == 3
    assert all(w.startswith("join failed error=") and "retry=10ms" in w for w in warnings)
    assert "no such name" in warnings[0]
    assert "no server could be joined" in warnings[1]
    assert "connection refused" in warnings[2]


def test_exhausted_after_max_attempts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nomadd.discovery")
    resolver = ScriptedResolver([DiscoveryError("SRV lookup of x: no such name (NXDOMAIN)")])
    join = Joiner(set())
    start = time.monotonic()
    with pytest.raises(RetryJoinExhausted) as info:
        asyncio.run(retry_join(["10.0.0.9"], join, resolver=resolver, interval=INTERVAL_S, max_attempts=3))
    assert str(info.value) == EXHAUSTED_MESSAGE == "max join retry exhausted, exiting"
    assert isinstance(info.value.__cause__, DiscoveryError)
    assert resolver.calls == 3
    assert join.calls == []
    warnings = _messages(caplog, logging.WARNING)
    assert len(warnings) == 3
    assert all("NXDOMAIN" in w for w in warnings)
    assert sum("retry=" in w for w in warnings) == 2  # no retry announced after the last one
    assert _messages(caplog, logging.ERROR) == [EXHAUSTED_MESSAGE]
    assert time.monotonic() - start < 2.0


def test_zero_max_attempts_retries_forever_until_success() -> None:
    resolver = ScriptedResolver([DiscoveryError("down")] * 12 + [["10.0.0.1:4648"]])
    join = Joiner({"10.0.0.1:4648"})
    n = asyncio.run(retry_join(["10.0.0.1"], join, resolver=resolver, interval=0.001, max_attempts=0))
    assert n == 1
    assert resolver.calls == 13


def test_malformed_entry_is_config_error_before_any_join() -> None:
    join = Joiner(set())
    with pytest.raises(ConfigError, match=r"'10\.0\.0\.1:notaport'"):
        asyncio.run(retry_join(["10.0.0.1:notaport"], join, resolver=Resolver(), interval=INTERVAL_S))
    assert join.calls == []


def test_cancel_stops_retrying() -> None:
    async def main() -> int:
        resolver = ScriptedResolver([DiscoveryError("down")])
        task = asyncio.create_task(
            retry_join(["10.0.0.1"], Joiner(set()), resolver=resolver, interval=INTERVAL_S)
        )
        deadline = time.monotonic() + 2.0
        while resolver.calls < 3 and time.monotonic() < deadline:
            await asyncio.sleep(INTERVAL_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return resolver.calls

    assert asyncio.run(main()) >= 3


def test_start_join_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nomadd.discovery")
    join = Joiner({"127.0.0.1:4646"})
    assert asyncio.run(start_join(["127.0.0.1"], join, resolver=Resolver(), port_kind="http")) == 1
    assert join.calls == [["127.0.0.1:4646"]]
    assert any("start join completed initial_servers=1" in m for m in caplog.messages)
    with pytest.raises(DiscoveryError, match="no server could be joined") as info:
        asyncio.run(start_join(["127.0.0.2"], join, resolver=Resolver()))
    assert not isinstance(info.value, RetryJoinExhausted)
    assert len(join.calls) == 2


def test_negative_arguments_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        asyncio.run(retry_join(["10.0.0.1"], Joiner(set()), resolver=Resolver(), interval=-1))

"""Fixtures for server unit tests: free loopback ports and in-process Raft members."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from nomadd.server.raft import Raft, RaftConfig
from tests.helpers import free_port
from tests.unit.server.fakes import make_fsm

__all__ = ["PASSWORD", "free_port", "make_raft", "wait_leader", "wait_until"]

PASSWORD = "unit-test-secret"


def make_raft(addr: str, peers: list[str], data_dir: Path | None = None, password: str = PASSWORD) -> Raft:
    """A Raft member with fast test timers (elections in well under a second)."""
    cfg = RaftConfig(
        self_addr=addr,
        bind_addr=addr,
        password=password,
        peers=tuple(p for p in peers if p != addr),
        data_dir=data_dir,
    )

    def on_fatal(err: BaseException) -> None:
        raise AssertionError(f"fsm fatal in test: {err}")

    return Raft(cfg, make_fsm(), on_fatal=on_fatal)


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}")
        await asyncio.sleep(0.02)


async def wait_leader(rafts: list[Raft], timeout: float = 10.0) -> Raft:
    await wait_until(
        lambda: sum(r.is_leader() for r in rafts) == 1 and all(r.leader() is not None for r in rafts),
        timeout,
        "one leader",
    )
    return next(r for r in rafts if r.is_leader())

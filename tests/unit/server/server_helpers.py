"""Fixtures for server unit tests: free loopback ports and in-process Raft members."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pysyncobj import SyncObjConf

from nomadd.server.fsm import FSM
from nomadd.server.raft import Raft, RaftConfig
from nomadd.server.raft.glue import RaftNode
from tests.helpers import free_port
from tests.unit.server.fakes import make_fsm

__all__ = [
    "PASSWORD",
    "free_port",
    "hand_ticked_conf",
    "hand_ticked_members",
    "make_members",
    "make_raft",
    "start_all",
    "wait_leader",
    "wait_until",
]

PASSWORD = "unit-test-secret"


def hand_ticked_conf(addr: str, fallback: float) -> SyncObjConf:
    """pysyncobj settings of a member the test ticks by hand (``doTick``): elections in
    0.3-0.5 s, heartbeats every 0.05 s, a leader stepping down after ``fallback`` s."""
    return SyncObjConf(
        password=PASSWORD,
        bindAddress=addr,
        autoTick=False,
        appendEntriesUseBatch=False,
        appendEntriesPeriod=0.05,
        raftMinTimeout=0.3,
        raftMaxTimeout=0.5,
        connectionRetryTime=0.1,
        connectionTimeout=30.0,
        leaderFallbackTimeout=fallback,
    )


def _fatal(err: BaseException) -> None:
    raise AssertionError(f"fsm fatal in test: {err}")


def hand_ticked_members(
    count: int, fallback: float, fsm: Callable[[], FSM] = make_fsm
) -> Iterator[list[RaftNode]]:
    """``count`` RaftNodes on 127.0.0.1 (:func:`hand_ticked_conf`), each with ``fsm()``;
    destroyed afterwards."""
    addrs = [f"127.0.0.1:{free_port()}" for _ in range(count)]
    nodes: list[RaftNode] = []
    for addr in addrs:
        nodes.append(
            RaftNode(fsm(), addr, [a for a in addrs if a != addr], hand_ticked_conf(addr, fallback), _fatal)
        )
    try:
        yield nodes
    finally:
        for node in nodes:
            node.destroy()


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


def make_members(count: int, data_root: Path) -> list[Raft]:
    """``count`` members of one cluster on 127.0.0.1, with data dirs ``data_root/n<i>``."""
    addrs = [f"127.0.0.1:{free_port()}" for _ in range(count)]
    return [make_raft(a, addrs, data_root / f"n{i}") for i, a in enumerate(addrs)]


async def start_all(rafts: list[Raft]) -> Raft:
    """Start every member; their leader."""
    for r in rafts:
        await r.start()
    return await wait_leader(rafts)

"""The steps of ``scripts/bench schedule --c1m`` after the placements (scripts/bench_c1m.py):
snapshot save, follower catch-up, restart and snapshot restore, each timed with the state the
run left."""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

OPS = ("snapshot_save", "catch_up", "restart", "snapshot_restore")  # the steps, in their order


def _raft_stat(agent: Any, key: str) -> int:
    """One of ``agent``'s Raft stats (``/v1/agent/self``) as a number, -1 while it does not answer."""
    try:
        return int(agent.api("GET", "/v1/agent/self", timeout=2.0)["stats"]["raft"][key])
    except Exception:
        return -1


def _applied(agent: Any) -> int:
    return _raft_stat(agent, "applied_index")


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def _cli(agent: Any, *args: str, timeout: float) -> str:
    out = agent.cli(*args, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"nomadd {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()[-300:]}")
    return str(out.stdout)


def _stop(agent: Any, timeout: float) -> float:
    """SIGTERM (an agent stops without leaving the cluster), SIGKILL after ``timeout``; the
    seconds until it exited."""
    t = time.monotonic()
    agent.kill(signal.SIGTERM)
    try:
        agent.wait_exit(timeout)
    except Exception:
        agent.kill(signal.SIGKILL)
    return round(time.monotonic() - t, 2)


def _start_timed(agent: Any, index: int, timeout: float, rec: dict[str, Any]) -> None:
    """Start the stopped ``agent``; ``rec`` gets the seconds until it answers HTTP (``http_s``)
    and until its applied index reaches ``index`` (``s``)."""
    t = time.monotonic()
    agent.start()
    _wait(lambda: _applied(agent) >= 0, timeout, f"{agent.name} answers")
    rec["http_s"] = round(time.monotonic() - t, 2)
    _wait(lambda: _applied(agent) >= index, timeout, f"{agent.name} reaches index {index}")
    rec["s"] = round(time.monotonic() - t, 2)


def operations(
    c: Any, servers: Sequence[Any], opts: argparse.Namespace, out: dict[str, Any], monitor: Any
) -> None:
    """Snapshot save, follower catch-up, restart and (last: it replaces the whole state)
    snapshot restore with the state the run left; each a dict in ``out`` with its seconds
    (``s``) or its ``error``, the leader it found, and when it started on the monitor's clock
    (``at``), whose figures are kept per step (the step's name is the monitor's window)."""
    limit = opts.op_timeout
    archive = c.tmp / "c1m.snap"
    caught_up: list[str] = []

    def save(rec: dict[str, Any], leader: Any) -> None:
        t = time.monotonic()
        _cli(leader, "operator", "snapshot", "save", str(archive), timeout=limit)
        rec["s"] = round(time.monotonic() - t, 2)
        rec["bytes"] = archive.stat().st_size

    def catch_up(rec: dict[str, Any], leader: Any) -> None:
        f = next(s for s in servers if s is not leader)
        caught_up.append(f.name)
        rec["server"] = f.name
        rec["stop_s"] = _stop(f, limit)
        raft_dir = f.data_dir / "server" / "raft"
        wiped = [p for p in raft_dir.glob("raft.*") if p.is_file()]  # journal and dump; peers.json stays
        for p in wiped:
            p.unlink()
        rec["wiped"] = sorted(p.name for p in wiped)
        target = _applied(leader)
        rec["leader_index"] = target
        rec["leader_log_len"] = _raft_stat(leader, "log_len")  # < the index: a snapshot install
        _start_timed(f, target, limit, rec)

    def restart(rec: dict[str, Any], leader: Any) -> None:
        others = [s for s in servers if s is not leader]
        f = next((s for s in others if s.name not in caught_up), others[0])
        rec["server"] = f.name
        before = _applied(f)
        rec["index"] = before
        rec["stop_s"] = _stop(f, limit)
        _start_timed(f, before, limit, rec)

    def restore(rec: dict[str, Any], leader: Any) -> None:
        t = time.monotonic()
        _cli(leader, "operator", "snapshot", "restore", str(archive), timeout=limit)
        rec["s"] = round(time.monotonic() - t, 2)
        target = _applied(leader)
        _wait(lambda: all(_applied(s) >= target for s in servers), limit, "every server applies the restore")
        rec["applied_everywhere_s"] = round(time.monotonic() - t, 2)

    steps: list[tuple[str, Callable[[dict[str, Any], Any], None]]] = [
        ("snapshot_save", save),
        ("catch_up", catch_up),
        ("restart", restart),
        ("snapshot_restore", restore),
    ]
    wanted = opts.ops.split(",")
    for name, fn in steps:
        if name not in wanted:
            continue
        if name == "snapshot_restore" and "s" not in out.get("snapshot_save", {}):
            continue  # no archive
        monitor.window = name
        rec: dict[str, Any] = {"at": monitor.elapsed()}
        out[name] = rec
        try:
            leader = c.wait_leader(servers, timeout=limit)
            rec["leader"] = leader.name
            fn(rec, leader)
        except Exception as err:
            rec["error"] = f"{type(err).__name__}: {err}"[:500]
    monitor.window = "end"

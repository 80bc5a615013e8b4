"""Keep a C1M run's state and start the steps after the run from it (scripts/bench_c1m.py).

Filling a million placements takes minutes; the steps after it (snapshot save, catch-up,
restart, restore) are what one iterates on. ``--save-state DIR`` stops the three servers after
the placements (SIGTERM: no leave), copies their data dirs and configs into ``DIR`` with
``cluster.json`` (names, addresses, ports, applied index), and starts them again for the steps;
``--from-state DIR`` skips the placements (with ``--place`` it places ``--jobs`` more jobs,
numbered from ``--job-offset``, on that state: the cost of a placement with a million stored): it copies ``DIR``'s data dirs into the run's own
directory, starts the servers on the same addresses (Raft peers are addresses) and times the
whole cluster's restart (``cluster_restart``: until a leader answers and until every server has
applied the saved index) before the steps. ``--logs DIR`` writes every agent's output there at
the end (``<name>.log``), whatever the mode."""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STATE_FILE = "cluster.json"


def _applied(agent: Any) -> int:
    try:
        return int(agent.api("GET", "/v1/agent/self", timeout=2.0)["stats"]["raft"]["applied_index"])
    except Exception:
        return -1


def save_state(c: Any, servers: Sequence[Any], dest: Path, timeout: float) -> dict[str, Any]:
    """Stop ``servers``, copy their data dirs and configs to ``dest``, start them again; the
    record (seconds to stop and copy, the index saved, bytes per server)."""
    t = time.monotonic()
    index = max(_applied(s) for s in servers)
    for s in servers:
        s.kill(signal.SIGTERM)
    for s in servers:
        try:
            s.wait_exit(timeout)
        except Exception:
            s.kill(signal.SIGKILL)
    dest.mkdir(parents=True, exist_ok=False)
    doc: dict[str, Any] = {"index": index, "servers": []}
    for s in servers:
        shutil.copytree(s.data_dir, dest / s.name, symlinks=True)
        doc["servers"].append(
            {
                "name": s.name,
                "ip": s.ip,
                "http_port": s.http_port,
                "raft_port": s.raft_port,
                "serf_port": s.serf_port,
                "config": s.config,
            }
        )
    (dest / STATE_FILE).write_text(json.dumps(doc, indent=2))
    rec = {"index": index, "s": round(time.monotonic() - t, 2), "dir": str(dest)}
    for s in servers:
        s.start()
    return rec


def load_state(c: Any, src: Path, log_level: str) -> tuple[list[Any], int]:
    """Agents of cluster ``c`` (not started) with copies of ``src``'s data dirs, on the saved
    addresses; and the index the saved state had applied."""
    from tests.integration.cluster import Agent

    doc = json.loads((src / STATE_FILE).read_text())
    servers: list[Any] = []
    for rec in doc["servers"]:
        data_dir = c.tmp / rec["name"]
        shutil.copytree(src / rec["name"], data_dir, symlinks=True)
        config = dict(rec["config"])
        config["data_dir"] = str(data_dir)
        config["log_level"] = log_level
        agent = Agent(
            name=rec["name"],
            ip=rec["ip"],
            http_port=rec["http_port"],
            raft_port=rec["raft_port"],
            serf_port=rec["serf_port"],
            data_dir=data_dir,
            config=config,
            config_path=c.tmp / f"{rec['name']}.toml",
            server=True,
            client=False,
        )
        c.agents.append(agent)
        servers.append(agent)
    return servers, int(doc["index"])


def restart_cluster(c: Any, servers: Sequence[Any], index: int, timeout: float) -> tuple[Any, dict[str, Any]]:
    """Start every server of a saved state at once; the leader and the record: seconds until a
    leader answers (``leader_s``) and until every server has applied ``index`` (``s``)."""
    t = time.monotonic()
    for s in servers:
        s.start()
    leader = c.wait_leader(servers, timeout=timeout)
    rec: dict[str, Any] = {"leader_s": round(time.monotonic() - t, 2), "index": index}
    deadline = t + timeout
    while not all(_applied(s) >= index for s in servers):
        if time.monotonic() > deadline:
            rec["error"] = f"TimeoutError: every server applies index {index}: not within {timeout:.0f} s"
            return leader, rec
        time.sleep(0.2)
    rec["s"] = round(time.monotonic() - t, 2)
    return leader, rec


def write_logs(agents: Sequence[Any], dest: Path) -> None:
    """Every agent's output (all its runs) to ``dest/<name>.log``."""
    dest.mkdir(parents=True, exist_ok=True)
    for a in agents:
        (dest / f"{a.name}.log").write_text(a.output)

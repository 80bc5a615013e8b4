"""``max_client_disconnect`` with real agents: 1 server + 2 clients, heartbeat TTL 2 s + 1 s grace.

A count-1 job with ``max_client_disconnect = "30s"`` runs on one client. SIGSTOP that client's
agent (its task keeps running): the node becomes ``disconnected`` (not ``down``), the allocation
client status ``unknown`` (not ``lost``, still desired ``run``), and a replacement runs on the
other client. SIGCONT well inside the window: the client reports its allocation running again,
the original is kept and the replacement stopped (``keep_original``, Nomad's default rule for
``max_client_disconnect`` in nomadd), and the original's task was never restarted.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster
from tests.integration.test_client_allocs import RAW_EXEC, alive, destroy, handles, job

pytestmark = pytest.mark.slow

SERVER_EXTRA = {"server": {"min_heartbeat_ttl": "2s", "heartbeat_grace": "1s"}}
WINDOW_NS = 30 * 1_000_000_000


def allocs(server: Agent) -> dict[str, dict[str, Any]]:
    found: list[dict[str, Any]] = server.api("GET", "/v1/job/disc/allocations", timeout=5.0)
    return {a["ID"]: a for a in found}


def node_status(server: Agent, node_id: str) -> str:
    status: str = server.api("GET", f"/v1/node/{node_id}", timeout=5.0)["Status"]
    return status


@dataclasses.dataclass
class Setup:
    server: Agent
    ids: dict[str, str]  # client name -> node ID
    original: dict[str, Any]  # the job's one allocation (list stub)
    holder: Agent  # the client running it
    other: Agent
    task: dict[str, Any]  # its task handle


def start(cluster: Cluster, window_ns: int) -> Setup:
    """1 server, 2 raw_exec clients, job ``disc`` (count 1, ``max_client_disconnect``) running."""
    server = cluster.add_server(bootstrap_expect=1, extra=SERVER_EXTRA).start()
    cluster.wait_leader([server])
    clients = [cluster.add_client(servers=[server], extra=RAW_EXEC).start() for _ in range(2)]

    def node_ids() -> dict[str, str]:
        found = server.api("GET", "/v1/nodes", timeout=3.0)
        return {n["Name"]: n["ID"] for n in found if n["Status"] == "ready"}

    ids = cluster.wait_for(lambda: len(node_ids()) == 2 and node_ids(), 30, "2 ready clients")
    spec = job("disc", 1)
    spec["Job"]["TaskGroups"][0]["MaxClientDisconnect"] = window_ns
    server.api("PUT", "/v1/jobs", spec)
    running = cluster.wait_for(
        lambda: [a for a in allocs(server).values() if a["ClientStatus"] == "running"], 30, "job running"
    )
    original = running[0]
    holder = next(c for c in clients if ids[c.name] == original["NodeID"])
    other = next(c for c in clients if c is not holder)
    cluster.wait_for(lambda: original["ID"] in handles(holder), 10, "task handle stored")
    return Setup(server, ids, original, holder, other, handles(holder)[original["ID"]])


def test_unknown_then_reconnect_keeps_original(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    started: list[dict[str, Any]] = []
    stopped: Agent | None = None
    try:
        setup = start(cluster, WINDOW_NS)
        server, ids, original, holder, other, task = (
            setup.server,
            setup.ids,
            setup.original,
            setup.holder,
            setup.other,
            setup.task,
        )
        started.append(task)

        # SIGSTOP the holder's agent: disconnected, unknown, replaced on the other client
        holder.kill(signal.SIGSTOP)
        stopped = holder
        t0 = time.monotonic()

        def replaced() -> dict[str, Any] | None:
            now = allocs(server)
            orig = now[original["ID"]]
            repl = [a for a in now.values() if a["ID"] != original["ID"] and a["ClientStatus"] == "running"]
            return orig if repl and orig["ClientStatus"] == "unknown" else None

        orig = cluster.wait_for(replaced, 20, "original unknown and a replacement running")
        print(f"unknown + replacement running {time.monotonic() - t0:.1f}s after SIGSTOP")
        assert orig["DesiredStatus"] == "run"
        assert node_status(server, ids[holder.name]) == "disconnected"
        [repl] = [a for a in allocs(server).values() if a["ID"] != original["ID"]]
        assert repl["NodeID"] == ids[other.name]
        assert server.api("GET", f"/v1/allocation/{repl['ID']}")["PreviousAllocation"] == original["ID"]
        cluster.wait_for(lambda: repl["ID"] in handles(other), 10, "replacement handle stored")
        started.append(handles(other)[repl["ID"]])
        assert alive(task)  # the agent is stopped, not its task

        # SIGCONT inside the window: the original is kept, the replacement stopped
        holder.kill(signal.SIGCONT)
        stopped = None

        def reconciled() -> bool:
            now = allocs(server)
            o, r = now[original["ID"]], now[repl["ID"]]
            return (
                o["ClientStatus"] == "running"
                and o["DesiredStatus"] == "run"
                and r["DesiredStatus"] == "stop"
            )

        cluster.wait_for(reconciled, 20, "original running again, replacement stopped")
        assert time.monotonic() - t0 < WINDOW_NS / 1e9
        assert node_status(server, ids[holder.name]) == "ready"
        cluster.wait_for(lambda: not alive(started[1]), 15, "replacement's task stopped")
        time.sleep(3.0)  # and it stays that way: no further replacement, original not stopped
        now = allocs(server)
        live = [a["ID"] for a in now.values() if a["DesiredStatus"] == "run"]
        assert live == [original["ID"]]
        assert now[original["ID"]]["ClientStatus"] == "running"
        assert alive(task) and handles(holder)[original["ID"]] == task  # never restarted
    finally:
        if stopped is not None:
            stopped.kill(signal.SIGCONT)
        cluster.close()
        if started:
            destroy(started)


def test_unknown_past_the_window_is_lost(tmp_path: Path) -> None:
    """A 6 s window: the allocation is unknown, then lost (and the node down) when it ends; the
    client, continued after that, stops the task."""
    cluster = Cluster(tmp_path)
    started: list[dict[str, Any]] = []
    stopped: Agent | None = None
    try:
        setup = start(cluster, 6 * 1_000_000_000)
        server, original, holder = setup.server, setup.original, setup.holder
        started.append(setup.task)
        holder.kill(signal.SIGSTOP)
        stopped = holder
        t0 = time.monotonic()
        cluster.wait_for(
            lambda: allocs(server)[original["ID"]]["ClientStatus"] == "unknown", 15, "original unknown"
        )
        t_unknown = time.monotonic() - t0
        cluster.wait_for(
            lambda: allocs(server)[original["ID"]]["ClientStatus"] == "lost", 15, "original lost"
        )
        t_lost = time.monotonic() - t0
        print(f"unknown after {t_unknown:.1f}s, lost after {t_lost:.1f}s (window 6s)")
        # not before the window ends (counted from the disconnect, in whole seconds as Nomad's
        # StatusUpdatedAt: up to 1 s early), less the time it took to see it unknown
        assert t_lost - t_unknown >= 4.0
        assert allocs(server)[original["ID"]]["DesiredStatus"] == "stop"
        cluster.wait_for(lambda: node_status(server, setup.ids[holder.name]) == "down", 10, "node down")
        live = [a for a in allocs(server).values() if a["DesiredStatus"] == "run"]
        assert [a["ClientStatus"] for a in live] == ["running"]  # the replacement, on the other client
        assert alive(setup.task)
        holder.kill(signal.SIGCONT)
        stopped = None
        cluster.wait_for(lambda: not alive(setup.task), 20, "lost allocation's task stopped on return")
    finally:
        if stopped is not None:
            stopped.kill(signal.SIGCONT)
        cluster.close()
        if started:
            destroy(started)

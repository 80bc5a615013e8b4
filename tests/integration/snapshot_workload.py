"""Issue 8 acceptance 4 as a function: snapshot a 3-server cluster holding many allocations,
restore it into a fresh 3-server cluster, compare the tables, refuse a corrupt file.

Shared by ``tests/integration/test_operator_snapshot.py`` (a few thousand allocations) and
``scripts/bench_snapshot.py`` (100,000, timed). Nodes are simulated (registered through the
internal RPC, as scripts/bench_schedule.py does; a long heartbeat TTL so none expires), the
allocations come from the real scheduler (service jobs through ``PUT /v1/jobs``). Every
operator step runs the real CLI (``nomadd operator snapshot save|inspect|restore``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import io
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import nomadd.server.server  # noqa: F401  (registers every table's codec, for decode_dump)
from nomadd.server.state.store import decode_dump
from tests.integration.cluster import Agent, Cluster

__all__ = ["SERVER_EXTRA", "fill", "run", "start_servers", "state_tables"]

# no simulated node may expire while the test runs (they never heartbeat); failover_heartbeat_ttl
# too: after a leader change every node gets that TTL (5 min by default) to heartbeat again
SERVER_EXTRA: dict[str, Any] = {
    "log_level": "INFO",
    "server": {"min_heartbeat_ttl": "3600s", "heartbeat_grace": "600s", "failover_heartbeat_ttl": "3600s"},
}
ALLOC_CPU, ALLOC_MB = 20, 10  # 200 allocations fit on a simulated node (4000 MHz, 8192 MB)


def start_servers(cluster: Cluster, n: int = 3) -> list[Agent]:
    servers = [cluster.add_server(bootstrap_expect=n, extra=SERVER_EXTRA) for _ in range(n)]
    cluster.link(servers)
    for s in servers:
        s.start()
    return servers


def _job(i: int, count: int) -> dict[str, Any]:
    task = {
        "Name": "t",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/true"},
        "Resources": {"CPU": ALLOC_CPU, "MemoryMB": ALLOC_MB},
    }
    return {
        "ID": f"snap-{i}",
        "Type": "service",
        "Datacenters": ["dc1"],
        "TaskGroups": [{"Name": "g", "Count": count, "Tasks": [task]}],
    }


async def _fill(
    leader: Agent, reader: Agent, nodes: int, jobs: int, count: int, variables: int, timeout: float
) -> None:
    import aiohttp

    from nomadd.rpc.auth import NODE_ID_HEADER, NODE_SECRET_HEADER
    from nomadd.rpc.wire import MSGPACK_CONTENT_TYPE, decode, encode_request
    from nomadd.scheduler.testing import mock_node
    from nomadd.structs.node import Node, NodeStatus
    from nomadd.structs.requests.node import (
        NODE_REGISTER,
        NODE_UPDATE_STATUS,
        NodeRegisterRequest,
        NodeUpdateStatusRequest,
    )

    sem = asyncio.Semaphore(32)
    async with aiohttp.ClientSession() as http:

        async def rpc(method: str, request: object, node: Node) -> Any:
            """``method`` as the simulated ``node`` calls it (its credential: ID and SecretID)."""
            headers = {
                "Content-Type": MSGPACK_CONTENT_TYPE,
                NODE_ID_HEADER: node.id,
                NODE_SECRET_HEADER: node.secret_id,
            }
            async with (
                sem,
                http.post(
                    f"{leader.url}/v1/internal/{method}", data=encode_request(request), headers=headers
                ) as resp,
            ):
                reply = decode(await resp.read())
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply["ok"]

        async def add_node() -> None:
            node = dataclasses.replace(mock_node(str(uuid.uuid4())), status=NodeStatus.INITIALIZING)
            await rpc(NODE_REGISTER.name, NodeRegisterRequest(node=node), node)
            ready = NodeUpdateStatusRequest(
                node_id=node.id, secret_id=node.secret_id, status=NodeStatus.READY
            )
            await rpc(NODE_UPDATE_STATUS.name, ready, node)

        async def put(method: str, path: str, body: Any) -> None:
            async with sem, http.request(method, f"{leader.url}{path}", json=body) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{method} {path}: {resp.status} {await resp.text()}")

        await asyncio.gather(*(add_node() for _ in range(nodes)))
        await asyncio.gather(
            *(put("PUT", f"/v1/var/app/v{i}", {"Items": {"i": str(i)}}) for i in range(variables))
        )
        await asyncio.gather(*(put("PUT", "/v1/jobs", {"Job": _job(i, count)}) for i in range(jobs)))

        want = jobs * count
        deadline = time.monotonic() + timeout
        placed, last_print = 0, time.monotonic()
        while time.monotonic() < deadline:
            # job summaries, read stale from a follower every few seconds: the leader may change
            # under this load, and listing every summary often would load it
            async with http.get(f"{reader.url}/v1/jobs", params={"prefix": "snap-", "stale": "true"}) as resp:
                listed = await resp.json()
            placed = sum(
                s.get("Starting", 0) + s.get("Running", 0)
                for j in listed
                for s in ((j.get("JobSummary") or {}).get("Summary") or {}).values()
            )
            if placed >= want:
                return
            if time.monotonic() - last_print > 30:
                print(f"fill: {placed} of {want} allocations placed", flush=True)
                last_print = time.monotonic()
            await asyncio.sleep(3.0)
        raise AssertionError(f"only {placed} of {want} allocations placed in {timeout}s")


def fill(
    leader: Agent,
    reader: Agent,
    *,
    nodes: int,
    jobs: int,
    count: int,
    variables: int = 20,
    timeout: float = 600,
) -> None:
    """Register ``nodes`` simulated nodes, ``variables`` variables and ``jobs`` jobs of
    ``count`` allocations through ``leader``; wait until ``reader`` (stale) sees all placed."""
    asyncio.run(_fill(leader, reader, nodes, jobs, count, variables, timeout))


def state_tables(archive: bytes) -> dict[str, Any]:
    """The tables inside a snapshot archive (state.bin decoded to rows), for exact comparison.
    Decoded, not raw: rows refer to shared objects (a job) by a number that depends on the
    order the dump walked the rows in."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive))) as tar:
        member = tar.extractfile("state.bin")
        assert member is not None
        _, tables = decode_dump(member.read())
    return {name: dict(rows) for name, rows in tables.items()}


def _cli(agent: Agent, *args: str, timeout: float = 600) -> str:
    out = agent.cli(*args, timeout=timeout)
    assert out.returncode == 0, f"nomadd {' '.join(args)}: {out.stdout}\n{out.stderr}"
    return out.stdout


def _step(times: dict[str, float], name: str, t0: float) -> None:
    times[name] = round(time.monotonic() - t0, 2)
    print(f"step {name}: {times[name]:.2f}s", flush=True)


def run(tmp: Path, *, nodes: int, jobs: int, count: int, timeout: float = 900) -> dict[str, Any]:
    """The whole acceptance run; returns the step times and sizes (asserts on every check)."""
    times: dict[str, float] = {}
    source = Cluster(tmp / "a")
    target = Cluster(tmp / "b", first_ip=10)
    try:
        t0 = time.monotonic()
        servers = start_servers(source)
        leader = source.wait_leader(servers, timeout=60)
        _step(times, "start_source_cluster", t0)
        t0 = time.monotonic()
        reader = next(s for s in servers if s is not leader)
        fill(leader, reader, nodes=nodes, jobs=jobs, count=count, timeout=timeout)
        _step(times, "fill", t0)

        snap = tmp / "backup.snap"
        t0 = time.monotonic()
        out = _cli(servers[0], "operator", "snapshot", "save", str(snap))
        _step(times, "save", t0)
        assert f"State file written to {snap}" in out
        t0 = time.monotonic()
        inspect = _cli(servers[0], "operator", "snapshot", "inspect", str(snap))
        _step(times, "inspect", t0)
        assert "Index" in inspect and "allocs" in inspect
        archive = snap.read_bytes()
        want = state_tables(archive)
        assert len(want["allocs"]) == jobs * count

        t0 = time.monotonic()
        fresh = start_servers(target)
        new_leader = target.wait_leader(fresh, timeout=60)
        _step(times, "start_target_cluster", t0)
        before = state_tables(_save(new_leader, tmp / "empty.snap"))

        # a corrupt file is refused by the CLI and by the agent, and changes nothing
        raw = bytearray(gzip.decompress(archive))
        raw[len(raw) // 2] ^= 0xFF
        bad = tmp / "corrupt.snap"
        bad.write_bytes(gzip.compress(bytes(raw)))
        refused = fresh[1].cli("operator", "snapshot", "restore", str(bad))
        assert refused.returncode != 0 and "checksum mismatch" in refused.stderr, refused.stderr
        truncated = tmp / "truncated.snap"
        truncated.write_bytes(archive[: len(archive) // 2])
        refused = fresh[1].cli("operator", "snapshot", "restore", str(truncated))
        assert refused.returncode != 0 and "truncated" in refused.stderr, refused.stderr
        status, body = _put_raw(fresh[1], bad.read_bytes())  # past the CLI's own check
        assert status == 400 and "checksum mismatch" in body, (status, body)
        assert state_tables(_save(new_leader, tmp / "after-refusal.snap")) == before

        t0 = time.monotonic()
        out = _cli(fresh[1], "operator", "snapshot", "restore", str(snap))  # through a follower or not
        _step(times, "restore", t0)
        assert "Snapshot Restored" in out

        t0 = time.monotonic()
        # the command returns once the leader applied it; each follower applies it once its own
        # decoder is done (fsm/snapshot.py): wait for every server to reach the leader's index
        done_leader = target.wait_leader(fresh, timeout=60)
        target_index = _applied(done_leader)
        target.wait_for(
            lambda: all(_applied(s) >= target_index for s in fresh), timeout=timeout, what="restore applied"
        )
        for s in fresh:  # every server, read locally (stale): the same tables as the source
            got = state_tables(_save(s, tmp / f"check-{s.name}.snap", stale=True))
            for table in ("jobs", "job_versions", "allocs", "nodes", "variables", "evals"):
                assert got.get(table) == want.get(table), f"{s.name}: table {table} differs"
        jobs_api = fresh[0].api("GET", "/v1/jobs", params={"stale": "true"}, timeout=60)
        assert len([j for j in jobs_api if j["ID"].startswith("snap-")]) == jobs
        _step(times, "verify", t0)
        return {
            "times": times,
            "archive_bytes": len(archive),
            "allocs": len(want["allocs"]),
            "nodes": len(want["nodes"]),
        }
    finally:
        source.close()
        target.close()


def _applied(agent: Agent) -> int:
    return int(agent.api("GET", "/v1/agent/self", timeout=10)["stats"]["raft"]["applied_index"])


def _save(agent: Agent, path: Path, stale: bool = False) -> bytes:
    args = ["operator", "snapshot", "save", *(["-stale"] if stale else []), str(path)]
    _cli(agent, *args)
    return path.read_bytes()


def _put_raw(agent: Agent, body: bytes) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{agent.url}/v1/operator/snapshot", data=body, method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")

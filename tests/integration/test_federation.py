"""Issue 15 acceptance (root): two federated regions, following docs/runbooks/federate-regions.md.

Regions ``east`` (authoritative for ACLs) and ``west``, 3 servers + 1 raw_exec client each,
every agent in its own network namespace, 40 ms of delay each way between the regions (``tc
netem``, or where the kernel lacks netem a userspace TAP relay between two bridges: netns.py). Federated by ``nomadd server join``; then: members and regions (1), a job run,
watched, streamed and blocked on in west through east (2), ACL replication with east down and
back (3), python-nomad's ``Nomad(region=...)`` (5), and with west's servers killed, east keeps
writing while requests for west fail with "No path to region" within 5 s (4).

A second, loopback test (no root) federates two one-server regions through ``retry_join``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, agent_env, is_root, need
from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.integration.netns import NetnsLab, netns_request
from tests.integration.runbook import Runbook

pytestmark = pytest.mark.slow

RUNBOOK = Runbook("federate-regions.md")
EAST, WEST = (0, 1, 2, 3), (4, 5, 6, 7)  # lab hosts: three servers, then the client
DELAY_MS = 40
REPLICATION = "1s"
RAW_EXEC = {"plugin": {"raw_exec": {"config": {"enabled": True}}}}


def _ping_ms(lab: NetnsLab, src: int, dst: int) -> float:
    """The shortest round trip of 5 pings from host ``src`` to host ``dst`` (the first one also
    waits for ARP and the bridge to learn)."""
    out = subprocess.run(
        [*lab.wrap(src), "ping", "-c", "5", "-i", "0.2", "-q", lab.ips[dst]],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return float(out.rsplit("=", 1)[1].split("/")[0])  # rtt min/avg/max/mdev = a/b/c/d ms: the min


def api(
    agent: Agent,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, str] | None = None,
    token: str = "",
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], Any]:
    """``(status, headers, JSON or text body)`` of a request made from ``agent``'s namespace."""
    headers = {"X-Nomad-Token": token} if token else {}
    status, hdrs, text = netns_request(agent.wrap, method, agent.url + path, body, params, timeout, headers)
    try:
        value = json.loads(text) if text else None
    except ValueError:
        value = text
    return status, hdrs, value


def ok(agent: Agent, method: str, path: str, token: str, **kw: Any) -> Any:
    status, _, value = api(agent, method, path, token=token, **kw)
    assert status == 200, f"{method} {path} on {agent.name}: {status} {value}"
    return value


def job(name: str, region: str, message: str) -> dict[str, Any]:
    task = {
        "Name": "t",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", f"echo {message}; exec sleep 600"]},
    }
    group = {"Name": "g", "Count": 1, "Tasks": [task]}
    return {
        "Job": {
            "ID": name,
            "Name": name,
            "Region": region,
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [group],
        }
    }


PYNOMAD = r"""
import json, sys, nomad
host, token = sys.argv[1], sys.argv[2]
out = {}
for region in ("east", "west"):
    n = nomad.Nomad(host=host, port=4646, region=region, token=token, timeout=10)
    out[region] = {
        "jobs": sorted(j["ID"] for j in n.jobs.get_jobs()),
        "nodes": sorted(x["Name"] for x in n.nodes.get_nodes()),
        "regions": n.regions.get_regions(),
    }
out["west_job"] = nomad.Nomad(host=host, port=4646, region="west", token=token).job.get_job("web-west")["Region"]
print(json.dumps(out))
"""


@pytest.mark.root
def test_two_regions_federate_forward_and_replicate(tmp_path: Path) -> None:
    need(is_root(), "needs root to create network namespaces and tc qdiscs")
    t_start = time.monotonic()
    lab = NetnsLab(8)
    cluster = Cluster(tmp_path)
    mgmt = str(uuid.uuid4())
    secret_file = tmp_path / "bootstrap.secret"
    secret_file.write_text(mgmt)
    try:
        how = lab.delay(EAST, WEST, DELAY_MS)
        _ping_ms(lab, EAST[0], WEST[0])  # the first second of a new bridge is slow (ARP, learning)
        rtt = _ping_ms(lab, EAST[0], WEST[0])
        print(f"\ndelay between regions: {DELAY_MS} ms each way ({how}); ping east->west rtt {rtt:.1f} ms")
        assert rtt >= 2 * DELAY_MS * 0.9, f"the regions' link is not delayed: rtt {rtt} ms"

        def servers_of(region: str, hosts: tuple[int, ...]) -> list[Agent]:
            acl: dict[str, Any] = {"enabled": True, "token_ttl": "1s", "policy_ttl": "1s"}
            if region == "west":
                acl |= {"replication_token": mgmt, "replication_interval": REPLICATION}
            extra = {"region": region, "acl": acl, "server": {"authoritative_region": "east"}}
            group = [
                cluster.add_server(name=f"{region}{i}", ip=lab.ips[h], wrap=lab.wrap(h), extra=extra)
                for i, h in enumerate(hosts[:3])
            ]
            cluster.link(group)
            return group

        east, west = servers_of("east", EAST), servers_of("west", WEST)
        clients = {
            region: cluster.add_client(
                servers=group,
                name=f"{region}-client",
                ip=lab.ips[hosts[3]],
                wrap=lab.wrap(hosts[3]),
                extra={"region": region, "acl": {"enabled": True, "token_ttl": "1s"}, **RAW_EXEC},
            )
            for region, group, hosts in (("east", east, EAST), ("west", west, WEST))
        }
        for a in [*east, *west]:
            a.start()
        cluster.wait_leader(east, timeout=60)
        cluster.wait_leader(west, timeout=60)
        for c in clients.values():  # once there are leaders: they register at once
            c.start()
        e0, w0 = east[0], west[0]
        subs = {
            "10.0.2.11": w0.serf_addr,
            "/etc/nomadd/bootstrap.secret": str(secret_file),
            "example.json": str(tmp_path / "web-west.json"),
        }
        env = {"NOMAD_TOKEN": mgmt}
        RUNBOOK.run(e0, "nomadd acl bootstrap /etc/nomadd/bootstrap.secret", subs)
        print(f"regions up and bootstrapped after {time.monotonic() - t_start:.1f}s")

        # ---- 1. federate: 6 servers in 2 regions, /v1/regions lists both ----------------
        RUNBOOK.run(e0, "nomadd server join 10.0.2.11", subs, env=env)

        def members_table() -> str:
            out = RUNBOOK.run(e0, "nomadd server members", subs, env=env)
            rows = [r for r in out.splitlines()[1:] if " alive " in r]
            west_rows = [r for r in rows if r.rstrip().endswith(" west")]
            leaders = [r for r in rows if " alive   true " in r]
            return out if len(rows) == 6 and len(west_rows) == 3 and len(leaders) == 2 else ""

        table = cluster.wait_for(members_table, 30, "6 alive servers in 2 regions")
        print(table)
        for s in (e0, w0):
            assert ok(s, "GET", "/v1/regions", "") == ["east", "west"]
        # Raft stays per region
        assert len(ok(w0, "GET", "/v1/status/peers", "")) == 3
        assert all(
            p.startswith(tuple(a.ip + ":" for a in west)) for p in ok(w0, "GET", "/v1/status/peers", "")
        )

        # ---- 2. job run / status / logs -f / blocking query for west, through east ------
        def node_ready(agent: Agent, name: str) -> list[dict[str, Any]]:
            return [
                n for n in ok(agent, "GET", "/v1/nodes", mgmt) if n["Name"] == name and n["Status"] == "ready"
            ]

        west_node = cluster.wait_for(lambda: node_ready(w0, "west-client"), 40, "west node ready")[0]
        cluster.wait_for(lambda: node_ready(e0, "east-client"), 40, "east node ready")
        (tmp_path / "web-west.json").write_text(json.dumps(job("web-west", "west", "hello-from-west")))
        RUNBOOK.run(e0, "nomadd job run -region west example.json", subs, env=env, timeout=90)

        def running_alloc() -> dict[str, Any] | None:
            allocs = ok(e0, "GET", "/v1/job/web-west/allocations", mgmt, params={"region": "west"})
            return next((a for a in allocs if a["ClientStatus"] == "running"), None)

        alloc = cluster.wait_for(running_alloc, 60, "web-west running in west")
        assert alloc["NodeID"] == west_node["ID"]
        status = RUNBOOK.run(e0, "nomadd job status -region west example", {"example": "web-west"}, env=env)
        assert "web-west" in status and "running" in status, status
        st, _, _ = api(e0, "GET", "/v1/job/web-west", token=mgmt)  # east itself has no such job
        assert st == 404

        logs = subprocess.Popen(
            [*e0.wrap, sys.executable, "-m", "nomadd", *f"alloc logs -f -region west {alloc['ID']}".split()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=agent_env(NOMAD_ADDR=e0.url, NOMAD_TOKEN=mgmt),
            cwd=ROOT,
        )
        assert "nomadd alloc logs -f -region west ALLOC_ID" in RUNBOOK.commands()
        try:
            assert logs.stdout is not None
            line = logs.stdout.readline()  # blocks until streamed (the task sleeps after it)
            assert "hello-from-west" in line, line + (logs.stderr.read() if logs.poll() is not None else "")
            assert logs.poll() is None  # still following
        finally:
            logs.kill()
            logs.communicate(timeout=10)

        _, headers, _ = api(e0, "GET", "/v1/jobs", token=mgmt, params={"region": "west"})
        index = headers["X-Nomad-Index"]
        blocked: dict[str, Any] = {}

        def block() -> None:
            t0 = time.monotonic()
            params = {"region": "west", "index": index, "wait": "30s"}
            st, hdrs, value = api(e0, "GET", "/v1/jobs", token=mgmt, params=params, timeout=40)
            blocked.update(status=st, index=hdrs.get("X-Nomad-Index"), jobs=value, took=time.monotonic() - t0)

        waiter = threading.Thread(target=block)
        waiter.start()
        time.sleep(2.0)
        assert not blocked, "the blocking query returned before west changed"
        ok(w0, "PUT", "/v1/jobs", mgmt, body=job("batch-west", "west", "second"))
        waiter.join(30)
        assert blocked["status"] == 200 and int(blocked["index"]) > int(index), blocked
        assert {j["ID"] for j in blocked["jobs"]} == {"web-west", "batch-west"}
        assert blocked["took"] < 15, blocked

        # ---- 5. python-nomad against the federated pair ---------------------------------
        ok(e0, "PUT", "/v1/jobs", mgmt, body=job("web-east", "east", "hello-from-east"))
        out = subprocess.run(
            [*e0.wrap, sys.executable, "-c", PYNOMAD, e0.ip, mgmt],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        seen = json.loads(out.stdout)
        assert seen["east"]["jobs"] == ["web-east"] and seen["west"]["jobs"] == ["batch-west", "web-west"]
        assert seen["east"]["nodes"] == ["east-client"] and seen["west"]["nodes"] == ["west-client"]
        assert seen["east"]["regions"] == ["east", "west"] and seen["west_job"] == "west"

        # ---- 3. ACL replication ----------------------------------------------------------
        t0 = time.monotonic()
        made = ok(
            e0, "POST", "/v1/acl/token", mgmt, body={"Name": "ops", "Type": "management", "Global": True}
        )
        token = made["SecretID"]
        cluster.wait_for(
            lambda: api(w0, "GET", "/v1/jobs", token=token)[0] == 200, 15, "east token works in west"
        )
        print(f"global token usable in west after {time.monotonic() - t0:.1f}s")
        rules_v1 = 'namespace "default" { policy = "read" }'
        rules_v2 = 'namespace "default" { policy = "write" }'
        ok(e0, "POST", "/v1/acl/policy/readers", mgmt, body={"Name": "readers", "Rules": rules_v1})
        cluster.wait_for(
            lambda: (api(w0, "GET", "/v1/acl/policy/readers", token=mgmt)[2] or {}).get("Rules") == rules_v1,
            15,
            "policy in west",
        )
        ok(e0, "POST", "/v1/acl/policy/readers", mgmt, body={"Name": "readers", "Rules": rules_v2})
        cluster.wait_for(
            lambda: (api(w0, "GET", "/v1/acl/policy/readers", token=mgmt)[2] or {}).get("Rules") == rules_v2,
            15,
            "policy change in west",
        )
        # namespaces replicate too; one written in west goes to east and comes back
        ok(e0, "POST", "/v1/namespace/ops", mgmt, body={"Name": "ops", "Description": "from east"})
        ok(w0, "POST", "/v1/namespace/dev", mgmt, body={"Name": "dev"})
        assert api(e0, "GET", "/v1/namespace/dev", token=mgmt)[0] == 200
        cluster.wait_for(
            lambda: all(api(w0, "GET", f"/v1/namespace/{n}", token=mgmt)[0] == 200 for n in ("ops", "dev")),
            15,
            "namespaces in west",
        )
        # a policy written in west goes to east (the authoritative region) and comes back
        ok(w0, "POST", "/v1/acl/policy/from-west", mgmt, body={"Name": "from-west", "Rules": rules_v1})
        assert api(e0, "GET", "/v1/acl/policy/from-west", token=mgmt)[0] == 200
        # a local (non-global) client token made in west stays in west
        local = ok(
            w0, "POST", "/v1/acl/token", mgmt, body={"Name": "w", "Type": "client", "Policies": ["readers"]}
        )
        assert api(e0, "GET", f"/v1/acl/token/{local['AccessorID']}", token=mgmt)[0] == 404

        for s in east:  # every authoritative server stops
            s.kill(signal.SIGKILL)
        assert api(w0, "GET", "/v1/jobs", token=token)[0] == 200  # tokens still checked in west
        assert api(w0, "GET", "/v1/jobs", token=str(uuid.uuid4()))[0] == 403
        ok(w0, "PUT", "/v1/jobs", mgmt, body=job("during-outage", "west", "x"))  # west keeps scheduling
        st, _, body = api(
            w0, "POST", "/v1/acl/policy/refused", token=mgmt, body={"Name": "refused", "Rules": rules_v1}
        )
        assert st == 500 and "No path to region" in str(body), (st, body)
        time.sleep(3)  # a few replication rounds fail meanwhile
        allocs = ok(w0, "GET", "/v1/job/web-west/allocations", mgmt)
        assert any(a["ClientStatus"] == "running" for a in allocs), allocs
        for s in east:
            s.start()
        cluster.wait_leader(east, timeout=60)
        # the restarted servers rejoin the federation by themselves (serf_peers.json)
        cluster.wait_for(members_table, 30, "east back in the federation")
        made2 = ok(
            e0, "POST", "/v1/acl/token", mgmt, body={"Name": "after", "Type": "management", "Global": True}
        )
        cluster.wait_for(
            lambda: api(w0, "GET", "/v1/jobs", token=made2["SecretID"])[0] == 200, 30, "replication caught up"
        )
        ok(e0, "DELETE", f"/v1/acl/token/{made['AccessorID']}", mgmt)
        cluster.wait_for(
            lambda: api(w0, "GET", "/v1/jobs", token=token)[0] == 403, 45, "deleted token refused in west"
        )

        # ---- 4. all of west's servers die ----------------------------------------------
        for s in west:
            s.kill(signal.SIGKILL)
        ok(e0, "PUT", "/v1/var/after-west", mgmt, body={"Items": {"v": "1"}})
        for _ in range(2):
            t0 = time.monotonic()
            st, _, body = api(e0, "GET", "/v1/jobs", token=mgmt, params={"region": "west"})
            took = time.monotonic() - t0
            assert st == 500 and "No path to region" in str(body) and took < 5, (st, body, took)
        out = e0.cli("job", "status", "-region", "west", env=env)
        assert out.returncode != 0 and "No path to region" in out.stdout + out.stderr
        assert {j["ID"] for j in ok(e0, "GET", "/v1/jobs", mgmt)} == {"web-east"}
        print(f"federation test took {time.monotonic() - t_start:.1f}s")
    finally:
        cluster.close()
        lab.close()


def test_retry_join_federates_over_tls_and_unknown_regions_have_no_path(tmp_path: Path) -> None:
    """Loopback, no root: two one-server regions with TLS (``verify_server_hostname``: each
    server holds ``server.<its region>.nomad``) and ACLs; west's retry_join names east's server,
    which federates them at start. West replicates east's bootstrap token; a gossip key rotation
    made in east reaches west's server too; -region and
    NOMAD_REGION reach the other region; a region nobody serves answers "No path to region"
    at once; Raft stays per region."""
    old_key, new_key = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    cluster = Cluster(tmp_path, tls=True, encrypt=old_key)
    assert cluster.tls is not None
    mgmt = str(uuid.uuid4())
    secret_file = tmp_path / "bootstrap.secret"
    secret_file.write_text(mgmt)
    try:
        servers = {}
        for region in ("east", "west"):
            acl: dict[str, Any] = {"enabled": True}
            if region == "west":
                acl |= {"replication_token": mgmt, "replication_interval": REPLICATION}
            extra = {"region": region, "acl": acl, "server": {"authoritative_region": "east"}}
            s = cluster.add_server(bootstrap_expect=1, name=region[0], extra=extra)
            cert, key = dataclasses.replace(cluster.tls, region=region).issue(
                "server", tmp_path / f"{region}-tls"
            )
            s.config["tls"] |= {"cert_file": str(cert), "key_file": str(key)}
            servers[region] = s
        east, west = servers["east"], servers["west"]
        west.config["server"]["server_join"] = {"retry_join": [east.serf_addr], "retry_interval": "1s"}
        client = cluster.add_client(
            servers=[east], name="ec", extra={"region": "east", "acl": {"enabled": True}}
        )
        for s in (east, west):
            s.start()
        cluster.wait_for(lambda: cluster.leader_of([east]) and cluster.leader_of([west]), 40, "two leaders")
        client.start()  # once east has a leader: it registers at once
        cluster.wait_for(lambda: east.api("GET", "/v1/regions") == ["east", "west"], 20, "east sees west")
        assert cluster.peers(east) == [east.raft_addr] and cluster.peers(west) == [west.raft_addr]

        def cli(agent: Agent, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
            name = f"server.{agent.config['region']}.nomad"
            return agent.cli(*args, env={"NOMAD_TOKEN": mgmt, "NOMAD_TLS_SERVER_NAME": name, **env})

        out = east.cli(
            "acl", "bootstrap", str(secret_file), env={"NOMAD_TLS_SERVER_NAME": "server.east.nomad"}
        )
        assert out.returncode == 0, out
        # replicated over the internal RPC to east (its certificate must name server.east.nomad)
        cluster.wait_for(lambda: cli(west, "var", "list").returncode == 0, 20, "bootstrap token in west")
        assert cli(west, "var", "put", "only/in/west", "v=1").returncode == 0
        out = cli(east, "var", "get", "-region", "west", "only/in/west")
        assert out.returncode == 0, out
        out = cli(east, "var", "list", NOMAD_REGION="west")
        assert out.returncode == 0 and "only/in/west" in out.stdout, out
        assert "only/in/west" not in cli(east, "var", "list").stdout
        # a client-only agent has no gossip: its server forwards the RPC (envelope region)
        env = {"NOMAD_TOKEN": mgmt, "NOMAD_TLS_SERVER_NAME": "client.global.nomad"}  # its cert's name
        out = cluster.wait_for(
            lambda: (r := client.cli("var", "list", "-region", "west", env=env)).returncode == 0 and r,
            20,
            "the client agent answers for west",
        )
        assert "only/in/west" in out.stdout, out
        # the pool's gossip key is rotated on every region's servers at once (one pool, one key)
        for op, key in (("-install", new_key), ("-use", new_key), ("-remove", old_key)):
            out = cli(east, "operator", "gossip", "keyring", op, key)
            assert out.returncode == 0, out
        listed = cli(west, "operator", "gossip", "keyring", "-list")
        assert f"{new_key}  2/2" in listed.stdout and old_key not in listed.stdout, listed
        assert "only/in/west" in cli(east, "var", "list", "-region", "west").stdout
        t0 = time.monotonic()
        with pytest.raises(HTTPError) as err:
            east.api("GET", "/v1/jobs", params={"region": "north"})
        assert err.value.status == 400 and "No path to region" in err.value.body
        assert time.monotonic() - t0 < 1.0
    finally:
        cluster.close()

"""Issue 9 acceptance 4: a 3-server + 1-client cluster on mutual TLS, with real processes.

Certificates come from ``nomadd tls ca create`` / ``tls cert create``; every agent runs with
``http``, ``rpc``, ``verify_server_hostname`` and ``verify_https_client`` (tests/integration/
cluster.py ``tls=True``). The test runs a job end to end (client registration and allocation
updates over the internal RPC, a write forwarded by a follower, ``alloc logs`` proxied from a
server to the client agent), then checks the refusals: no certificate, a certificate from
another CA, and an agent with a client certificate joining as a server (never a Raft peer). The
CLI works through Nomad's environment variables. Certificates rotated in place and SIGHUP'ed
are served on new connections by the same processes.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.helpers import agent_env
from tests.integration.cluster import Agent, Cluster, ClusterTLS

pytestmark = pytest.mark.slow

RAW_EXEC = {"plugin": {"raw_exec": {"config": {"enabled": True}}}}
TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


def ticker_job() -> dict[str, Any]:
    task = {
        "Name": "t",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", TICKER]},
        "Resources": {"CPU": 50, "MemoryMB": 32},
        "KillTimeout": 1_000_000_000,
    }
    group = {"Name": "g", "Count": 1, "Tasks": [task]}
    return {
        "Job": {
            "ID": "ticker",
            "Name": "ticker",
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [group],
        }
    }


def served_serial(agent: Agent, ctx: ssl.SSLContext) -> int:
    """The serial of the certificate ``agent`` presents on a new connection."""
    with (
        socket.create_connection((agent.ip, agent.http_port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def file_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def refused(url: str, ctx: ssl.SSLContext) -> str:
    """Call ``url`` with ``ctx``; returns why it failed (the test fails if it succeeds)."""
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            resp.read()
    except (urllib.error.URLError, OSError) as err:  # ssl.SSLError is an OSError
        return str(getattr(err, "reason", err))
    raise AssertionError(f"{url} answered a caller it should refuse")


def rotate(tls: ClusterTLS, agent: Agent, kind: str, tmp: Path) -> int:
    """Issue a new certificate from the same CA into the agent's files; returns its serial."""
    fresh_cert, fresh_key = tls.issue(kind, tmp / f"{agent.name}-rotated")
    cert, key = Path(agent.config["tls"]["cert_file"]), Path(agent.config["tls"]["key_file"])
    os.replace(fresh_key, key)
    os.replace(fresh_cert, cert)
    return file_serial(cert)


def test_mtls_cluster_refusals_cli_and_rotation(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, tls=True)
    tls = cluster.tls
    assert tls is not None
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        cluster.link(servers)
        # An agent with a client certificate that joins as a server, from the start: it must
        # neither count towards bootstrap_expect nor ever become a Raft peer.
        rogue = cluster.add_server(bootstrap_expect=3, cert_kind="client", name="rogue")
        rogue.config["server"]["server_join"] = {
            "retry_join": [s.serf_addr for s in servers],
            "retry_interval": "1s",
        }
        # The rogue is in the gossip pool before the third server starts, so the first
        # servers see four alive "servers" when they decide to bootstrap.
        for s in [rogue, *servers[:2]]:
            s.start()
        for s in servers[:2]:
            s.wait_http()
            cluster.wait_for(
                lambda s=s: cluster.members(s).get(rogue.member_name) == "alive",
                30,
                "rogue in the gossip pool",
            )
        servers[2].start()
        leader = cluster.wait_leader(servers, timeout=40)
        follower = next(s for s in servers if s is not leader)
        client = cluster.add_client(servers=servers, extra=RAW_EXEC).start()

        # ---- end to end over mTLS -------------------------------------------------------
        cluster.wait_for(
            lambda: [n["Status"] for n in leader.api("GET", "/v1/nodes")] == ["ready"], 30, "client ready"
        )
        follower.api("PUT", "/v1/var/tls/a", {"Items": {"k": "v"}})  # forwarded to the leader
        assert leader.api("GET", "/v1/var/tls/a")["Items"] == {"k": "v"}
        follower.api("PUT", "/v1/jobs", ticker_job())

        def running_alloc() -> str | None:
            found = leader.api("GET", "/v1/job/ticker/allocations")
            ok = [a["ID"] for a in found if a["ClientStatus"] == "running"]
            return ok[0] if ok else None

        alloc_id = cluster.wait_for(running_alloc, 30, "allocation running")

        # ---- the CLI through Nomad's environment variables --------------------------------
        # NOMAD_TLS_SERVER_NAME=server.global.nomad: the agents listen on 127.0.0.x, which
        # their certificates do not name.
        members = follower.cli("server", "members")
        assert members.returncode == 0, members.stderr
        alive = {line.split()[0] for line in members.stdout.splitlines() if " alive " in line}
        assert {s.member_name for s in servers} <= alive  # (the rogue is in the gossip pool too)
        logs = cluster.wait_for(
            lambda: (
                (r := follower.cli("alloc", "logs", alloc_id)).returncode == 0 and "tick" in r.stdout and r
            ),
            15,
            "alloc logs proxied from a server to the client agent",
        )
        assert "tick 0" in logs.stdout
        nodes = follower.cli("node", "status")
        assert nodes.returncode == 0 and "ready" in nodes.stdout, nodes.stderr
        # NOMAD_SKIP_VERIFY instead of the CA; then no client certificate: refused
        cert, key = tls.cli_cert
        env = agent_env(
            NOMAD_ADDR=follower.url,
            NOMAD_CLIENT_CERT=str(cert),
            NOMAD_CLIENT_KEY=str(key),
            NOMAD_SKIP_VERIFY="1",
        )
        out = subprocess.run(
            [sys.executable, "-m", "nomadd", "node", "status"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert out.returncode == 0 and "ready" in out.stdout, out.stderr
        no_cert = agent_env(NOMAD_ADDR=follower.url, NOMAD_CACERT=str(tls.ca))
        out = subprocess.run(
            [sys.executable, "-m", "nomadd", "node", "status"],
            capture_output=True,
            text=True,
            env=no_cert,
            timeout=30,
        )
        assert out.returncode == 1, out.stdout

        # ---- refusals ------------------------------------------------------------------
        url = f"{leader.url}/v1/status/leader"
        ca_only = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca_only.load_verify_locations(cafile=str(tls.ca))
        ca_only.check_hostname = False
        print("no certificate:", refused(url, ca_only))
        print("no certificate, internal RPC:", refused(f"{leader.url}/v1/internal/Node.Register", ca_only))
        other = ClusterTLS.create(tmp_path / "other-ca")
        foreign = other.context()
        foreign.load_verify_locations(cafile=str(tls.ca))  # it trusts our servers; they must not trust it
        print("other CA:", refused(url, foreign))

        cluster.wait_for(
            lambda: cluster.members(leader).get(rogue.member_name) == "alive", 30, "rogue in the gossip pool"
        )
        cluster.wait_for(
            lambda: "not adding raft peer" in leader.output or rogue.raft_addr in cluster.peers(leader),
            20,
            "the leader to decide on the rogue server",
        )
        assert rogue.raft_addr not in cluster.peers(leader)
        assert sorted(cluster.peers(follower)) == sorted(s.raft_addr for s in servers)
        print("rogue:", "\n".join(line for line in rogue.output.splitlines() if "raft" in line)[-1500:])
        assert "server.global.nomad" in leader.output.split("not adding raft peer", 1)[1].splitlines()[0]
        rogue.kill()

        # ---- rotation by SIGHUP, no restart ----------------------------------------------
        harness = tls.context()
        for agent, kind in ((follower, "server"), (client, "client")):
            before = served_serial(agent, harness)
            assert before == file_serial(Path(agent.config["tls"]["cert_file"]))
            pid = agent.proc.proc.pid if agent.proc else 0
            new = rotate(tls, agent, kind, tmp_path)
            assert served_serial(agent, harness) == before  # not before the HUP
            reloads = agent.output.count("tls certificates reloaded")
            agent.kill(signal.SIGHUP)
            cluster.wait_for(
                lambda a=agent, n=reloads: a.output.count("tls certificates reloaded") > n, 10, "reload"
            )
            assert served_serial(agent, harness) == new != before
            assert agent.running() and agent.proc is not None and agent.proc.proc.pid == pid
        # the rotated agents still talk to the cluster: a forwarded write, logs proxied again
        follower.api("PUT", "/v1/var/tls/b", {"Items": {"k": "rotated"}})
        assert leader.api("GET", "/v1/var/tls/b")["Items"] == {"k": "rotated"}
        again = follower.cli("alloc", "logs", alloc_id)
        assert again.returncode == 0 and "tick" in again.stdout, again.stderr
    finally:
        cluster.close()

"""docs/runbooks/secure-cluster.md, followed literally with real agents.

Three servers and a client run on plain HTTP without ACLs, as after install-cluster.md. The test
then does what the runbook says, step by step: the CA and certificates (``nomadd tls``), the
servers' and the client's configuration blocks (read out of the runbook), the restart, the CLI's
environment block, ``nomadd acl bootstrap``, the two policies (read out of the runbook) and their
tokens, the checks (what must work and what must be refused), certificate rotation by SIGHUP,
and gossip and root key rotation. Every ``nomadd`` command run here is a command of the runbook
(``tests/integration/runbook.py``), with the runbook's example paths and addresses replaced by the
test's.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import ssl
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.cluster import Agent, Cluster, ClusterTLS
from tests.integration.runbook import Runbook
from tests.integration.test_tls_cluster import file_serial, served_serial

pytestmark = pytest.mark.slow

RUNBOOK = Runbook("secure-cluster.md")


@dataclass(frozen=True)
class RunbookTLS(ClusterTLS):
    """The harness's view of the runbook's CA directory: every file in one place (step 1)."""

    @property
    def cli_cert(self) -> tuple[Path, Path]:
        return self.root / "global-cli-nomad.pem", self.root / "global-cli-nomad-key.pem"


def assert_handshake_refused(url: str, ctx: ssl.SSLContext) -> None:
    """``url`` refuses a caller with ``ctx`` in the TLS handshake (not with an HTTP status)."""
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            resp.read()
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{url}: TLS let the caller through, HTTP {err.code}") from None
    except urllib.error.URLError as err:
        if not isinstance(err.reason, ssl.SSLError | ConnectionResetError):
            raise AssertionError(f"{url}: not a TLS refusal: {err!r}") from None
    except (ssl.SSLError, ConnectionResetError):
        pass
    else:
        raise AssertionError(f"{url} answered a caller without a certificate")


def secret_of(out: str) -> str:
    m = re.search(r"Secret ID\s*=\s*(\S+)", out)
    assert m, out
    return m.group(1)


class Operator:
    """Runs the runbook's commands against one agent, in a working directory, with the runbook's
    environment plus what the operator exported so far."""

    def __init__(self, agent: Agent, subs: dict[str, str], cwd: Path) -> None:
        self.agent = agent
        self.subs = subs
        self.cwd = cwd
        self.env: dict[str, str] = {}

    def run(self, command: str, cwd: Path | None = None, ok: bool | None = True) -> str:
        """The command's output; it must succeed (``ok``), fail (``not ok``), or either (None)."""
        out = self.agent.cli(
            *RUNBOOK.command(command, self.subs)[1:], env=self.env, cwd=cwd or self.cwd, timeout=60
        )
        text = out.stdout + out.stderr
        if ok is not None:
            assert (out.returncode == 0) == ok, f"{command} (exit {out.returncode}):\n{text}"
        return text

    def until(self, command: str, pred: str, cluster: Cluster, timeout: float = 60) -> str:
        """Run ``command`` until its output holds ``pred``."""
        return cluster.wait_for(
            lambda: text if pred in (text := self.run(command, ok=None)) else None,
            timeout=timeout,
            what=f"{pred!r} in {command}",
        )


def test_runbook_secures_a_running_cluster(tmp_path: Path) -> None:
    old_key = base64.b64encode(secrets.token_bytes(32)).decode()
    cluster = Cluster(tmp_path, encrypt=old_key)
    ca_dir = tmp_path / "nomadd-ca"
    work = tmp_path / "operator"
    work.mkdir()
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=60)
        client = cluster.add_client(servers=servers)
        client.start()
        cluster.wait_for(
            lambda: [n for n in leader.api("GET", "/v1/nodes") if n["Status"] == "ready"],
            timeout=60,
            what="client ready on plain http",
        )
        subs = {
            "/root/nomadd-ca": str(ca_dir),
            "/etc/nomadd/tls/": f"{ca_dir}/",
            "https://127.0.0.1:4646": f"https://{servers[0].http_addr}",
            "OLD-KEY": old_key,
        }
        op = Operator(servers[0], subs, work)

        # 1. the CA and one certificate per role
        ca_dir.mkdir(mode=0o700)
        for command in (
            "nomadd tls ca create",
            "nomadd tls cert create -server -region global",
            "nomadd tls cert create -client -region global",
            "nomadd tls cert create -cli -region global",
        ):
            op.run(command, cwd=ca_dir)
        tls = RunbookTLS(ca_dir)

        # 3-5. the runbook's configuration blocks; restart the servers, then the client
        server_cfg = tomllib.loads(RUNBOOK.block("server-config", subs))
        client_cfg = tomllib.loads(RUNBOOK.block("client-config", subs))
        for s in servers:
            s.kill(signal.SIGTERM)
        for s in servers:
            s.wait_exit(30)
            s.config.update(server_cfg)
            s.tls = tls
            s.start()
        cluster.wait_leader(servers, timeout=60)
        client.kill(signal.SIGTERM)
        client.wait_exit(30)
        client.config.update(client_cfg)
        client.tls = tls
        client.start()
        for a in [*servers, client]:
            assert a.proc is not None
            assert "the HTTP API has no" not in a.proc.output, a.proc.output[-2000:]

        # 6-7. the CLI's environment, the bootstrap, the management token
        op.env = RUNBOOK.exports("cli-env", subs)
        management = secret_of(op.run("nomadd acl bootstrap"))
        subs["SECRET-ID-OF-THE-MANAGEMENT-TOKEN"] = management
        op.env.update(RUNBOOK.exports("token-env", subs))
        assert op.env["NOMAD_TOKEN"] == management
        assert "management" in op.run("nomadd acl token self")

        # 8. the runbook's policies, and a token for each
        (work / "operator.policy.hcl").write_text(RUNBOOK.block("operator-policy"))
        (work / "deployer.policy.hcl").write_text(RUNBOOK.block("deployer-policy"))
        op.run('nomadd acl policy apply -description "Operators: all but ACLs" operator operator.policy.hcl')
        op.run(
            'nomadd acl policy apply -description "CI: deploy jobs in default" deployer deployer.policy.hcl'
        )
        ops_token = secret_of(op.run('nomadd acl token create -name "ops-alice" -policy operator'))
        ci_token = secret_of(op.run('nomadd acl token create -name "ci-deployer" -policy deployer'))
        listed = op.run("nomadd acl token list")
        assert "ops-alice" in listed and "ci-deployer" in listed

        # 9. it works with the operator's token ...
        op.env["NOMAD_TOKEN"] = ops_token
        members = op.until("nomadd server members", "alive", cluster)
        assert members.count(" alive ") == 3, members
        peers = op.run("nomadd operator raft list-peers")
        assert all(s.raft_addr in peers for s in servers) and "leader" in peers, peers
        op.until("nomadd node status", "ready", cluster)
        op.run("nomadd job status")
        # ... and refuses what it must: no client certificate, an unknown token, a token
        # whose policy does not allow it
        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bare.load_verify_locations(cafile=str(tls.ca))
        bare.check_hostname = False
        assert_handshake_refused(f"{servers[0].url}/v1/jobs", bare)
        out = op.run("nomadd job status -token=00000000-0000-0000-0000-000000000000", ok=False)
        assert "ACL token not found" in out, out
        op.env["NOMAD_TOKEN"] = ci_token
        op.run("nomadd job status")
        assert "Permission denied" in op.run("nomadd operator raft list-peers", ok=False)
        op.env["NOMAD_TOKEN"] = management

        # 10. new certificates from the same CA, installed over the old files, SIGHUP
        pids = {a.name: a.proc.proc.pid for a in [*servers, client] if a.proc is not None}
        new_dir = ca_dir / "2027"
        new_dir.mkdir()
        subs["/root/nomadd-ca/2027"] = str(new_dir)
        for command in (
            "nomadd tls cert create -server -region global -ca ../nomad-agent-ca.pem -key ../nomad-agent-ca-key.pem",
            "nomadd tls cert create -client -region global -ca ../nomad-agent-ca.pem -key ../nomad-agent-ca-key.pem",
        ):
            op.run(command, cwd=new_dir)
        for role in ("server", "client"):
            for suffix in ("-key.pem", ".pem"):
                name = f"global-{role}-nomad{suffix}"
                os.replace(new_dir / name, ca_dir / name)
        want = file_serial(ca_dir / "global-server-nomad.pem")
        for a in [*servers, client]:
            a.kill(signal.SIGHUP)
        ctx = tls.context()
        for s in servers:
            cluster.wait_for(lambda s=s: served_serial(s, ctx) == want, timeout=30, what=f"{s.name} rotated")
        client_serial = file_serial(ca_dir / "global-client-nomad.pem")
        cluster.wait_for(
            lambda: served_serial(client, ctx) == client_serial, timeout=30, what="client rotated"
        )
        assert {a.name: a.proc.proc.pid for a in [*servers, client] if a.proc is not None} == pids
        assert op.run("nomadd server members").count(" alive ") == 3

        # 11. the gossip key, then the variables' root key
        new_key = op.run("nomadd operator keygen").strip()
        subs["NEW-KEY"] = new_key
        for command in (
            "nomadd operator gossip keyring -install NEW-KEY",
            "nomadd operator gossip keyring -use NEW-KEY",
            "nomadd operator gossip keyring -remove OLD-KEY",
        ):
            op.run(command)
        keys = op.run("nomadd operator gossip keyring -list")
        assert new_key in keys and old_key not in keys, keys
        op.run("nomadd operator root keyring rotate")
        assert op.run("nomadd operator root keyring list").count("active") >= 1
        assert op.run("nomadd server members").count(" alive ") == 3
    finally:
        cluster.close()

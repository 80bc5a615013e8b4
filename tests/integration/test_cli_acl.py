"""docs/acl.md: ``nomadd acl ...`` against ``nomadd agent -dev -acl-enabled``, with the token from
``NOMAD_TOKEN`` or ``-token``."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.helpers import AgentProcess, agent_env, dev_ports_config, run_nomadd, wait_for

pytestmark = pytest.mark.slow


def _field(out: str, name: str) -> str:
    m = re.search(rf"^{name}\s*= (.*)$", out, re.M)
    assert m, out
    return m.group(1).strip()


def test_acl_commands(tmp_path: Path) -> None:
    cfg, http = dev_ports_config(tmp_path)
    agent = AgentProcess(["-dev", "-acl-enabled", "-config", str(cfg)])
    try:
        agent.wait_line("agent started!")
        env = {**agent_env(), "NOMAD_ADDR": f"http://127.0.0.1:{http}"}
        wait_for(
            lambda: run_nomadd(["operator", "raft", "list-peers"], env=env).returncode in (0, 1), timeout=10
        )
        denied = run_nomadd(["node", "status"], env=env)
        assert denied.returncode == 1 and "Permission denied" in denied.stderr + denied.stdout

        secret_file = tmp_path / "root.token"
        secret_file.write_text("4c4f2b1c-1111-4222-8333-444455556666\n")
        boot = run_nomadd(["acl", "bootstrap", str(secret_file)], env=env)
        assert boot.returncode == 0, boot.stderr
        assert _field(boot.stdout, "Secret ID") == "4c4f2b1c-1111-4222-8333-444455556666"
        assert _field(boot.stdout, "Type") == "management"
        again = run_nomadd(["acl", "bootstrap"], env=env)
        assert again.returncode == 1 and "ACL bootstrap already done" in again.stderr

        env["NOMAD_TOKEN"] = "4c4f2b1c-1111-4222-8333-444455556666"
        rules = tmp_path / "ro.hcl"
        rules.write_text('namespace "default" { policy = "read" }\nnode { policy = "read" }\n')
        out = run_nomadd(["acl", "policy", "apply", "-description", "read only", "ro", str(rules)], env=env)
        assert out.returncode == 0 and 'Successfully wrote "ro" ACL policy!' in out.stdout, out.stderr
        bad = tmp_path / "bad.hcl"
        bad.write_text('namespace "default" { capabilities = ["fly"] }')
        out = run_nomadd(["acl", "policy", "apply", "bad", str(bad)], env=env)
        assert out.returncode == 1 and "Invalid namespace capability 'fly'" in out.stderr
        assert "read only" in run_nomadd(["acl", "policy", "list"], env=env).stdout
        assert 'policy = "read"' in run_nomadd(["acl", "policy", "info", "ro"], env=env).stdout

        out = run_nomadd(["acl", "role", "create", "-name", "readers", "-policy", "ro"], env=env)
        assert out.returncode == 0, out.stderr
        role_id = _field(out.stdout, "ID")
        assert "readers" in run_nomadd(["acl", "role", "list"], env=env).stdout
        assert (
            _field(run_nomadd(["acl", "role", "info", "-by-name", "readers"], env=env).stdout, "ID")
            == role_id
        )
        out = run_nomadd(["acl", "role", "update", "-description", "all readers", role_id], env=env)
        assert _field(out.stdout, "Description") == "all readers"

        out = run_nomadd(["acl", "token", "create", "-name", "reader", "-role-name", "readers"], env=env)
        assert out.returncode == 0, out.stderr
        accessor, secret = _field(out.stdout, "Accessor ID"), _field(out.stdout, "Secret ID")
        assert _field(out.stdout, "Roles") == "readers"
        assert accessor in run_nomadd(["acl", "token", "list"], env=env).stdout
        out = run_nomadd(["acl", "token", "update", "-name", "reader2", accessor], env=env)
        assert _field(out.stdout, "Name") == "reader2"
        assert _field(run_nomadd(["acl", "token", "info", accessor], env=env).stdout, "Name") == "reader2"
        reader_env = {**env, "NOMAD_TOKEN": secret}
        assert _field(run_nomadd(["acl", "token", "self"], env=reader_env).stdout, "Accessor ID") == accessor
        assert run_nomadd(["node", "status"], env=reader_env).returncode == 0
        # -token wins over NOMAD_TOKEN
        out = run_nomadd(["acl", "token", "list", "-token", secret], env=env)
        assert out.returncode == 1 and "Permission denied" in out.stderr

        assert run_nomadd(["acl", "token", "delete", accessor], env=env).returncode == 0
        assert run_nomadd(["acl", "role", "delete", role_id], env=env).returncode == 0
        assert run_nomadd(["acl", "policy", "delete", "ro"], env=env).returncode == 0
        assert "No policies found" in run_nomadd(["acl", "policy", "list"], env=env).stdout
    finally:
        agent.signal(signal.SIGINT)
        try:
            agent.wait(20)
        finally:
            agent.stop()

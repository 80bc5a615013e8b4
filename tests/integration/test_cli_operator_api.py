"""``nomadd operator api`` against ``nomadd agent -dev -acl-enabled``: the CLI's address and token,
a body from standard input, -filter, -H, a whole URL, -dryrun's curl command, errors."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.helpers import AgentProcess, agent_env, dev_ports_config, run_nomadd, wait_for

pytestmark = pytest.mark.slow


def test_operator_api(tmp_path: Path) -> None:
    cfg, http = dev_ports_config(tmp_path)
    agent = AgentProcess(["-dev", "-acl-enabled", "-config", str(cfg)])
    try:
        agent.wait_line("agent started!")
        addr = f"http://127.0.0.1:{http}"
        env = {**agent_env(), "NOMAD_ADDR": addr}
        wait_for(
            lambda: run_nomadd(["operator", "api", "/v1/status/leader"], env=env).returncode == 0, timeout=10
        )

        boot = run_nomadd(["operator", "api", "-X", "POST", "/v1/acl/bootstrap"], env=env, input="")
        assert boot.returncode == 0, boot.stderr
        env["NOMAD_TOKEN"] = json.loads(boot.stdout)["SecretID"]

        body = json.dumps({"Items": {"k": "v"}})
        put = run_nomadd(["operator", "api", "-X", "PUT", "/v1/var/app/one"], env=env, input=body)
        assert put.returncode == 0, put.stderr
        run_nomadd(["operator", "api", "-X", "PUT", "/v1/var/app/two"], env=env, input=body)
        listed = run_nomadd(["operator", "api", "-filter", 'Path == "app/two"', "/v1/vars"], env=env)
        assert [v["Path"] for v in json.loads(listed.stdout)] == ["app/two"], listed.stderr
        paged = run_nomadd(["operator", "api", "-verbose", "/v1/vars?per_page=1"], env=env)
        assert [v["Path"] for v in json.loads(paged.stdout)] == ["app/one"]
        assert "< X-Nomad-NextToken: default.app/two" in paged.stderr and "> GET " in paged.stderr

        whole = run_nomadd(
            ["operator", "api", f"http://127.0.0.1:{http}/v1/var/app/one"],
            env={**env, "NOMAD_ADDR": "http://127.0.0.1:1"},
        )
        assert json.loads(whole.stdout)["Items"] == {"k": "v"}, whole.stderr

        denied = run_nomadd(["operator", "api", "/v1/vars"], env={**env, "NOMAD_TOKEN": ""})
        assert denied.returncode == 1 and "Permission denied" in denied.stderr, denied.stderr

        bad = run_nomadd(["operator", "api", "-H", "no-colon", "/v1/jobs"], env=env)
        assert bad.returncode == 1 and "Invalid header 'no-colon'" in bad.stderr
        bad = run_nomadd(["operator", "api", "v1/jobs"], env=env)
        assert bad.returncode == 1 and "must start with /" in bad.stderr

        dry = run_nomadd(
            ["operator", "api", "-dryrun", "-H", "X-Test: 1", "-filter", "ID == x", "/v1/jobs"], env=env
        )
        words = shlex.split(dry.stdout)
        assert words[:3] == ["curl", "-X", "GET"], dry.stdout
        assert f"X-Nomad-Token: {env['NOMAD_TOKEN']}" in words and "X-Test: 1" in words
        assert words[-1] == f"{addr}/v1/jobs?filter=ID+%3D%3D+x"
    finally:
        agent.stop()

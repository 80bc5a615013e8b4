"""ACLs of the client file system and ``alloc exec`` (Nomad's capabilities): ``read-fs`` for the
fs endpoints, ``alloc-exec`` for exec, and also ``alloc-node-exec`` for a raw_exec task (a shell
on the host)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, agent_env, is_root, need
from tests.integration.cluster import Cluster
from tests.integration.test_acl_client_agent import call
from tests.integration.test_client_fs_exec import RAW_EXEC, _job, _task

pytestmark = pytest.mark.slow

ACL_ON = {"acl": {"enabled": True, "token_ttl": "1s"}}


def test_fs_and_exec_need_their_capabilities(tmp_path: Path) -> None:
    need(is_root(), "the exec driver needs root")
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1, extra=ACL_ON).start()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server], extra={**ACL_ON, **RAW_EXEC}).start()
        status, text = call(server, "PUT", "/v1/acl/bootstrap")
        assert status == 200, text
        mgmt = json.loads(text)["SecretID"]

        def token(name: str, caps: list[str]) -> str:
            rules = f'namespace "default" {{ capabilities = {json.dumps(caps)} }}'
            assert call(server, "PUT", f"/v1/acl/policy/{name}", mgmt, {"Rules": rules})[0] == 200
            _, text = call(server, "PUT", "/v1/acl/token", mgmt, {"Type": "client", "Policies": [name]})
            return str(json.loads(text)["SecretID"])

        fs_token = token("fs", ["read-fs"])
        exec_token = token("exec", ["read-job", "alloc-exec"])  # the CLI reads the alloc too
        node_exec = token("node-exec", ["read-job", "alloc-exec", "alloc-node-exec"])
        cluster.wait_for(lambda: call(client, "GET", "/v1/agent/health")[0] == 200, 30, "client http")
        status, _ = call(
            server,
            "PUT",
            "/v1/jobs",
            mgmt,
            _job("j", {"raw": _task("raw_exec", "exec sleep 600"), "iso": _task("exec", "exec sleep 600")}),
        )
        assert status == 200

        def running() -> dict[str, str] | None:
            status, text = call(server, "GET", "/v1/job/j/allocations", mgmt)
            found = json.loads(text) if status == 200 else []
            ok = len(found) == 2 and all(a["ClientStatus"] == "running" for a in found)
            return {a["TaskGroup"]: a["ID"] for a in found} if ok else None

        by_group = cluster.wait_for(running, 40, "both allocations running")
        raw, iso = by_group["raw"], by_group["iso"]
        ls = f"/v1/client/fs/ls/{raw}?path=/"
        assert call(client, "GET", ls)[0] == 403
        assert call(client, "GET", ls, exec_token)[0] == 403
        assert call(client, "GET", ls, fs_token)[0] == 200
        assert call(client, "GET", f"/v1/client/fs/cat/{raw}?path=t/local", fs_token)[0] == 400

        def exec_id(alloc_id: str, secret: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "nomadd",
                    "alloc",
                    "exec",
                    "-i=false",
                    "-t=false",
                    alloc_id,
                    "id",
                    "-un",
                ],
                capture_output=True,
                text=True,
                env=agent_env(NOMAD_ADDR=client.url, NOMAD_TOKEN=secret),
                cwd=ROOT,
                timeout=30,
            )

        assert exec_id(iso, fs_token).returncode != 0
        assert call(client, "GET", ls, exec_token)[0] == 403  # read-job is not read-fs
        got = exec_id(iso, exec_token)
        assert got.returncode == 0 and got.stdout.strip() == "nobody", got
        refused = exec_id(raw, exec_token)  # raw_exec: a shell on the host needs alloc-node-exec
        assert refused.returncode != 0 and "alloc-node-exec" in refused.stderr, refused
        got = exec_id(raw, node_exec)
        assert got.returncode == 0 and got.stdout.strip() == "root", got
    finally:
        cluster.close()

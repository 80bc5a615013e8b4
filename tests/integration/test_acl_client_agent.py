"""docs/acl.md: a client-only agent checks its own routes (/v1/agent/*, /v1/client/*) and the
server-backed ones it forwards with tokens it resolves through its servers (ACL.ResolveToken)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster

pytestmark = pytest.mark.slow

ACL_ON = {"acl": {"enabled": True, "token_ttl": "1s"}}


def call(agent: Agent, method: str, path: str, token: str = "", body: Any = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(agent.url + path, data=data, method=method)
    if token:
        req.add_header("X-Nomad-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_client_agent_resolves_tokens_through_its_servers(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1, extra=ACL_ON).start()
        cluster.wait_leader([server])
        client = cluster.add_client(servers=[server], extra=ACL_ON).start()
        cluster.wait_for(lambda: call(client, "GET", "/v1/agent/health")[0] == 200, 30, "client http")
        status, text = call(server, "PUT", "/v1/acl/bootstrap")
        assert status == 200, text
        mgmt = json.loads(text)["SecretID"]
        rules = 'agent { policy = "read" }'
        assert call(server, "PUT", "/v1/acl/policy/agent-read", mgmt, {"Rules": rules})[0] == 200
        status, text = call(
            server, "PUT", "/v1/acl/token", mgmt, {"Type": "client", "Policies": ["agent-read"]}
        )
        reader = json.loads(text)

        assert call(client, "GET", "/v1/agent/self")[0] == 403
        assert call(client, "GET", "/v1/agent/self", reader["SecretID"])[0] == 200
        assert call(client, "GET", "/v1/agent/self", mgmt)[0] == 200
        assert call(client, "PUT", "/v1/agent/servers?address=127.0.0.1:1", reader["SecretID"])[0] == 403
        assert call(client, "GET", "/v1/client/stats", reader["SecretID"])[0] == 403
        assert call(client, "GET", "/v1/client/stats", mgmt)[0] == 200
        assert call(client, "GET", "/v1/agent/self", "00000000-0000-4000-8000-000000000000") == (
            403,
            "ACL token not found",
        )
        # server-backed routes through the client: the same answers
        assert call(client, "GET", "/v1/jobs", reader["SecretID"])[0] == 403
        assert call(client, "GET", "/v1/jobs", mgmt)[0] == 200
        # a deleted token stops working on the client once its cache entry (token_ttl) ends
        assert call(server, "DELETE", f"/v1/acl/token/{reader['AccessorID']}", mgmt)[0] == 200
        cluster.wait_for(
            lambda: call(client, "GET", "/v1/agent/self", reader["SecretID"])[0] == 403, 10, "token revoked"
        )
    finally:
        cluster.close()

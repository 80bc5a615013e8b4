"""docs/acl.md: every HTTP route checks Nomad's capability for it, through the one table
``agent/http/acl_rules.ROUTE_RULES``.

The real route table (the aiohttp app with every endpoint module) runs in-process against the
one FakeServer with ACLs on. For every route: no token → 403 (except Nomad's public routes, listed
here), a token whose policy grants exactly the route's capability → not 403, a token holding
every other capability but that one → 403. A route without a rule fails
:func:`test_every_route_has_a_rule`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nomadd.agent.config import AgentConfig
from nomadd.agent.http import acl_rules
from nomadd.agent.http.acl_rules import ENTERPRISE_ONLY
from nomadd.agent.http.server import HTTPServer
from nomadd.server.acl.gc import ACLTokenGC
from nomadd.server.acl.policy import NAMESPACE_CAPABILITIES
from nomadd.structs.config import ACLConfig
from nomadd.structs.requests.acl import ACL_BOOTSTRAP, ACLBootstrapRequest
from tests.unit.server.fakes import FakeServer, api_job

# Nomad answers these without a token (plus the internal RPC, authenticated by its own credentials).
PUBLIC_ROUTES = {
    ("GET", "/v1/agent/health"),
    ("GET", "/v1/metrics"),
    ("GET", "/v1/regions"),
    ("GET", "/v1/status/leader"),
    ("GET", "/v1/status/peers"),
    ("PUT", "/v1/acl/bootstrap"),
    ("POST", "/v1/acl/bootstrap"),
    ("PUT", "/v1/acl/token/onetime/exchange"),
    ("POST", "/v1/acl/token/onetime/exchange"),
    ("POST", "/v1/internal/{method}"),
    ("GET", "/v1/operator/license"),
    # Nomad Enterprise's paths answer 501 to anyone
    *((m, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", p)) for m, p in ENTERPRISE_ONLY),
}
UUID = "9a1f6bb1-3f7e-4a4c-9f3c-0b1b2c3d4e5f"
_PARAMS = {"id": UUID, "accessor": UUID, "alloc": UUID, "name": "p", "path": "app/x", "method": "Status.Ping"}
_LEVEL_KINDS = ("node", "agent", "operator")
_VAR_CAPS = ("read", "list", "write", "destroy")


def _routes(app: Any) -> list[tuple[str, str]]:
    out = {(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    return sorted((m, p.replace("{path:.+}", "{path}")) for m, p in out)


def _policy(grant: acl_rules.Rule | None, *, exclude: acl_rules.Rule | None = None) -> str:
    """Rules granting exactly ``grant``, or everything but ``exclude``."""
    if grant is not None:
        if grant.kind == "ns":
            return f'namespace "default" {{ capabilities = ["{grant.cap}"] }}'
        if grant.kind == "var":
            return f'namespace "default" {{ variables {{ path "*" {{ capabilities = ["{grant.cap}"] }} }} }}'
        return f'{grant.kind} {{ policy = "{grant.cap}" }}'
    assert exclude is not None
    ns_caps = sorted(NAMESPACE_CAPABILITIES - {"deny", exclude.cap if exclude.kind == "ns" else ""})
    var_caps = [c for c in _VAR_CAPS if not (exclude.kind == "var" and c == exclude.cap)]
    caps = ", ".join(f'"{c}"' for c in ns_caps)
    vcaps = ", ".join(f'"{c}"' for c in var_caps)
    text = f'namespace "*" {{ capabilities = [{caps}]\n variables {{ path "*" {{ capabilities = [{vcaps}] }} }} }}\n'
    for kind in _LEVEL_KINDS:
        if exclude.kind == kind:
            text += f'{kind} {{ policy = "{"read" if exclude.cap == "write" else "deny"}" }}\n'
        else:
            text += f'{kind} {{ policy = "write" }}\n'
    return text


class Harness:
    def __init__(self, fake: FakeServer, client: TestClient, management: str) -> None:
        self.fake, self.client, self.management = fake, client, management
        self._n = 0

    async def request(self, method: str, path: str, token: str = "", body: object = None) -> tuple[int, str]:
        headers = {"X-Nomad-Token": token} if token else {}
        json_body = {} if body is None and method in ("PUT", "POST") else body
        async with self.client.request(method, path, headers=headers, json=json_body) as resp:
            return resp.status, await resp.text()

    async def token_for(self, rules: str) -> str:
        self._n += 1
        name = f"p{self._n}"
        status, text = await self.request(
            "PUT", f"/v1/acl/policy/{name}", self.management, {"Name": name, "Rules": rules}
        )
        assert status == 200, text
        status, text = await self.request(
            "PUT", "/v1/acl/token", self.management, {"Type": "client", "Policies": [name]}
        )
        assert status == 200, text
        secret: str = json.loads(text)["SecretID"]
        return secret


def run(
    test: Callable[[Harness], Awaitable[None]], acl: ACLConfig = ACLConfig(enabled=True), **server_config: Any
) -> None:
    async def main() -> None:
        fake = FakeServer(acl=acl, **server_config)
        agent = SimpleNamespace(
            server=fake, client=None, acl=fake.ctx.acl, config=AgentConfig(), reload_hook=None, tls=None
        )
        http = HTTPServer(agent)  # type: ignore[arg-type]
        async with TestClient(TestServer(http.app)) as client:
            reply = await fake.rpc(ACL_BOOTSTRAP, ACLBootstrapRequest())
            assert reply.token is not None
            await test(Harness(fake, client, reply.token.secret_id))

    asyncio.run(main())


def _app_routes() -> list[tuple[str, str]]:
    agent = SimpleNamespace(acl=None, tls=None)
    return _routes(HTTPServer(agent).app)  # type: ignore[arg-type]


def test_every_route_has_a_rule() -> None:
    missing = [route for route in _app_routes() if route not in acl_rules.ROUTE_RULES]
    assert missing == [], f"routes without an ACL rule in agent/http/acl_rules.py: {missing}"
    public = {k for k, r in acl_rules.ROUTE_RULES.items() if r.kind in ("public", "internal")}
    assert public == PUBLIC_ROUTES


def test_every_route_checks_its_capability() -> None:
    async def body(h: Harness) -> None:
        failures: list[str] = []
        for method, pattern in _app_routes():
            rule = acl_rules.ROUTE_RULES[(method, pattern)]
            path = re.sub(r"\{(\w+)\}", lambda m: _PARAMS[m.group(1)], pattern)
            status, text = await h.request(method, path)
            if (method, pattern) in PUBLIC_ROUTES:
                if status == 403 and "internal" not in pattern:
                    failures.append(f"{method} {pattern}: public but 403 without a token")
                continue
            if status != 403:
                failures.append(f"{method} {pattern}: no token gave {status} {text[:60]!r}")
            if rule.kind == "self":
                continue  # the endpoint checks, per request (its own tests: test_event_endpoint.py)
            if rule.kind in ("token", "management"):
                granted = h.management
            else:
                granted = await h.token_for(_policy(rule))
            status, text = await h.request(method, path, granted)
            if status == 403:
                failures.append(f"{method} {pattern}: {rule} granted but 403 {text[:60]!r}")
            if rule.kind == "token":
                continue  # any valid token passes; the ACL endpoint decides (tested below)
            other = await h.token_for(_policy(None, exclude=rule))
            status, text = await h.request(method, path, other)
            if status != 403:
                failures.append(f"{method} {pattern}: token without {rule} gave {status} {text[:60]!r}")
        assert failures == []

    run(body)


def test_lists_leave_out_what_the_token_may_not_read() -> None:
    async def body(h: Harness) -> None:
        await h.fake.register_job(api_job("a"))
        await h.fake.add_namespace("other")
        other_reg = await h.fake.register_job({**api_job("b"), "Namespace": "other"})
        reader = await h.token_for('namespace "default" { policy = "read" }')
        status, text = await h.request("GET", "/v1/jobs?namespace=*", reader)
        assert status == 200, text
        assert [j["ID"] for j in json.loads(text)] == ["a"]
        status, text = await h.request("GET", "/v1/jobs?namespace=*", h.management)
        assert sorted(j["ID"] for j in json.loads(text)) == ["a", "b"]
        assert (await h.request("GET", "/v1/job/b?namespace=other", reader))[0] == 403
        # an evaluation found by ID is checked against its own namespace, not ?namespace=
        assert (await h.request("GET", f"/v1/evaluation/{other_reg.eval_id}", reader))[0] == 403
        assert (await h.request("GET", f"/v1/evaluation/{other_reg.eval_id}", h.management))[0] == 200
        other_reader = await h.token_for('namespace "other" { policy = "read" }')
        assert (await h.request("GET", f"/v1/evaluation/{other_reg.eval_id}", other_reader))[0] == 200
        # a write naming another namespace in its body is checked against that namespace
        writer = await h.token_for('namespace "default" { policy = "write" }')
        job = {**api_job("c"), "Namespace": "other"}
        assert (await h.request("PUT", "/v1/jobs", writer, {"Job": job}))[0] == 403
        # the check reads the body; the handler still gets it
        assert (await h.request("PUT", "/v1/jobs", writer, {"Job": api_job("c")}))[0] == 200
        assert (await h.request("PUT", "/v1/var/app/x", h.management, {"Items": {"k": "v"}}))[0] == 200

    run(body)


def test_bad_tokens_policies_and_expiry() -> None:
    async def body(h: Harness) -> None:
        status, text = await h.request("GET", "/v1/jobs", "not-a-uuid")
        assert (status, text) == (400, "malformed ACL token: the secret ID must be a UUID")
        assert await h.request("GET", "/v1/jobs", UUID) == (403, "ACL token not found")
        assert (await h.request("GET", f"/v1/acl/token/{UUID}", h.management))[0] == 404
        assert (await h.request("DELETE", f"/v1/acl/token/{UUID}", h.management))[0] == 404
        for rules, message in (
            ('namespace "default" { capabilities = ["fly"] }', "Invalid namespace capability 'fly'"),
            ('namespace "default" { policy = "admin" }', "Invalid namespace policy 'admin'"),
            ("namespace {", "Failed to parse ACL policy: invalid HCL"),
            ('node { policy = "root" }', "Invalid node policy 'root'"),
            ('{"namespace": {"default": {"capabilities": ["fly"]}}}', "Invalid namespace capability 'fly'"),
            ("{not json", "Failed to parse ACL policy: invalid JSON"),
            ('volume "x" {}', "unknown block 'volume'"),
        ):
            status, text = await h.request(
                "PUT", "/v1/acl/policy/bad", h.management, {"Name": "bad", "Rules": rules}
            )
            assert status == 400 and message in text, (rules, status, text)
        status, text = await h.request(
            "PUT", "/v1/acl/token", h.management, {"Type": "client", "Policies": ["nope"]}
        )
        assert (status, text) == (400, "cannot find policy 'nope'")
        status, text = await h.request("PUT", "/v1/acl/token", h.management, {"Type": "root"})
        assert status == 400 and "token type" in text
        status, text = await h.request(
            "PUT", "/v1/acl/token", h.management, {"Type": "management", "ExpirationTTL": "soon"}
        )
        assert (status, text) == (400, "ExpirationTTL: invalid duration 'soon'")
        # an expired token is refused, then collected by the leader's GC
        await h.token_for('namespace "default" { policy = "read" }')
        status, text = await h.request(
            "PUT",
            "/v1/acl/token",
            h.management,
            {"Type": "client", "Policies": ["p1"], "ExpirationTTL": "50ms"},
        )
        assert status == 200, text
        expiring = json.loads(text)
        assert (await h.request("GET", "/v1/jobs", expiring["SecretID"]))[0] == 200
        await asyncio.sleep(0.1)
        assert await h.request("GET", "/v1/jobs", expiring["SecretID"]) == (403, "ACL token expired")
        assert await ACLTokenGC(h.fake.ctx).collect() == [expiring["AccessorID"]]
        assert await h.request("GET", "/v1/jobs", expiring["SecretID"]) == (403, "ACL token not found")

    run(body, acl=ACLConfig(enabled=True, token_min_expiration_ttl=0.01))  # a token of 50 ms


def test_token_expiry_bounds() -> None:
    """Nomad's acl.token_min_expiration_ttl (1m) and token_max_expiration_ttl (24h)."""

    async def body(h: Harness) -> None:
        async def create(**fields: Any) -> tuple[int, str]:
            return await h.request("PUT", "/v1/acl/token", h.management, {"Type": "management", **fields})

        assert await create(ExpirationTTL="30s") == (
            400,
            "expiration time cannot be less than 1m0s in the future (was 30s)",
        )
        assert await create(ExpirationTTL="24h1m") == (
            400,
            "expiration time cannot be more than 24h0m0s in the future (was 24h1m0s)",
        )
        in_a_week = "2099-01-01T00:00:00Z"
        status, text = await create(ExpirationTime=in_a_week)
        assert status == 400 and text.startswith("expiration time cannot be more than 24h0m0s"), text
        assert (await create(ExpirationTTL="1m"))[0] == 200
        assert (await create(ExpirationTTL="24h"))[0] == 200
        assert (await create())[0] == 200  # no expiry at all: not bounded

    run(body)


def test_anonymous_policy_governs_requests_without_a_token() -> None:
    async def body(h: Harness) -> None:
        assert (await h.request("GET", "/v1/jobs"))[0] == 403
        rules = 'namespace "default" { policy = "read" }'
        assert (await h.request("PUT", "/v1/acl/policy/anonymous", h.management, {"Rules": rules}))[0] == 200
        assert (await h.request("GET", "/v1/jobs"))[0] == 200
        assert (await h.request("PUT", "/v1/jobs", body={"Job": api_job("x")}))[0] == 403

    run(body)


def test_roles_one_time_tokens_and_self() -> None:
    async def body(h: Harness) -> None:

        await h.token_for('node { policy = "read" }')  # policy p1
        status, text = await h.request(
            "POST", "/v1/acl/role", h.management, {"Name": "ops", "Policies": [{"Name": "p1"}]}
        )
        assert status == 200, text
        role = json.loads(text)
        status, text = await h.request(
            "PUT", "/v1/acl/token", h.management, {"Type": "client", "Roles": [{"Name": "ops"}]}
        )
        token = json.loads(text)
        assert token["Roles"] == [{"ID": role["ID"], "Name": "ops"}]
        assert (await h.request("GET", "/v1/nodes", token["SecretID"]))[0] == 200
        assert (await h.request("GET", "/v1/jobs", token["SecretID"]))[0] == 403
        assert (
            json.loads((await h.request("GET", "/v1/acl/role/name/ops", token["SecretID"]))[1])["ID"]
            == role["ID"]
        )
        assert (
            json.loads((await h.request("GET", "/v1/acl/token/self", token["SecretID"]))[1])["AccessorID"]
            == token["AccessorID"]
        )
        status, text = await h.request("POST", "/v1/acl/token/onetime", token["SecretID"])
        ott = json.loads(text)["OneTimeToken"]["OneTimeSecretID"]
        body = {"OneTimeSecretID": ott}
        status, text = await h.request("POST", "/v1/acl/token/onetime/exchange", body=body)
        assert json.loads(text)["Token"]["SecretID"] == token["SecretID"]
        assert (await h.request("POST", "/v1/acl/token/onetime/exchange", body=body))[0] == 403
        assert (await h.request("DELETE", f"/v1/acl/role/{role['ID']}", h.management))[0] == 200
        assert (await h.request("GET", "/v1/nodes", token["SecretID"]))[0] == 403

    run(body)


def test_bootstrap_once_then_reset_file(tmp_path: Any) -> None:
    async def body(h: Harness) -> None:
        status, text = await h.request("PUT", "/v1/acl/bootstrap")
        assert status == 400 and text.startswith("ACL bootstrap already done (reset index: ")
        reset = int(text.rsplit(" ", 1)[1].rstrip(")"))
        (tmp_path / "acl-bootstrap-reset").write_text(f"{reset}\n")
        secret = "1b2c3d4e-0000-4000-8000-000000000001"
        status, text = await h.request("PUT", "/v1/acl/bootstrap", body={"BootstrapSecret": secret})
        assert status == 200 and json.loads(text)["SecretID"] == secret, text
        assert not (tmp_path / "acl-bootstrap-reset").exists()
        assert (await h.request("GET", "/v1/acl/tokens", secret))[0] == 200
        assert (await h.request("PUT", "/v1/acl/bootstrap"))[0] == 400

    run(body, data_dir=str(tmp_path))


def test_acl_disabled_answers_400() -> None:
    async def main() -> None:
        fake = FakeServer()
        agent = SimpleNamespace(server=fake, client=None, acl=fake.ctx.acl, config=AgentConfig(), tls=None)
        async with TestClient(TestServer(HTTPServer(agent).app)) as client:  # type: ignore[arg-type]
            async with client.put("/v1/acl/bootstrap") as resp:
                assert (resp.status, await resp.text()) == (400, "ACL support disabled")
            async with client.get("/v1/jobs") as resp:
                assert resp.status == 200

    asyncio.run(main())


@pytest.mark.parametrize("header", ["X-Nomad-Token", "Authorization"])
def test_both_token_headers(header: str) -> None:
    async def body(h: Harness) -> None:
        value = h.management if header == "X-Nomad-Token" else f"Bearer {h.management}"
        async with h.client.get("/v1/acl/tokens", headers={header: value}) as resp:
            assert resp.status == 200

    run(body)


def test_allocation_writes_are_checked_against_the_allocations_namespace() -> None:
    from nomadd.structs.requests.job import JOB_ALLOCATIONS, JobSpecificRequest

    async def body(h: Harness) -> None:
        await h.fake.add_node()
        h.fake.scheduling.set_enabled(True)
        try:
            await h.fake.add_namespace("other")
            reg = await h.fake.register_job({**api_job("b", count=1), "Namespace": "other"})
            req = JobSpecificRequest(
                job_id="b", namespace="other", min_query_index=reg.meta.index, max_query_time_s=5.0
            )
            allocs = (await h.fake.rpc(JOB_ALLOCATIONS, req)).allocations
            assert len(allocs) == 1
            alloc_id = allocs[0].id
            default_only = await h.token_for('namespace "default" { policy = "write" }')
            other = await h.token_for('namespace "other" { capabilities = ["alloc-lifecycle", "read-job"] }')
            # ?namespace= names the caller's namespace, but the allocation lives in "other"
            for method, path in (
                ("POST", f"/v1/allocation/{alloc_id}/stop?namespace=default"),
                ("POST", f"/v1/allocation/{alloc_id[:8]}/stop"),
                ("GET", f"/v1/allocation/{alloc_id}"),
                ("GET", f"/v1/client/fs/logs/{alloc_id}?task=t"),
            ):
                assert (await h.request(method, path, default_only))[0] == 403, path
            assert (await h.request("GET", f"/v1/allocation/{alloc_id}", other))[0] == 200
            # a node's allocations: node:read, and only those the token may read-job
            node_reader = await h.token_for(
                'node { policy = "read" }\nnamespace "default" { policy = "read" }'
            )
            node_id = allocs[0].node_id
            status, text = await h.request("GET", f"/v1/node/{node_id}/allocations", node_reader)
            assert (status, json.loads(text)) == (200, [])
            status, text = await h.request("GET", f"/v1/node/{node_id}/allocations", h.management)
            assert [a["ID"] for a in json.loads(text)] == [alloc_id]
            status, text = await h.request("POST", f"/v1/allocation/{alloc_id}/stop", other)
            assert status == 200, text
        finally:
            h.fake.scheduling.set_enabled(False)

    run(body)


def test_fuzzed_acl_requests_never_answer_5xx() -> None:
    """Random JSON bodies and tokens against the ACL routes: 2xx or 4xx, never a 5xx."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=12)
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )
    keys = st.sampled_from(
        [
            "Name",
            "Type",
            "Policies",
            "Roles",
            "Global",
            "ExpirationTTL",
            "ExpirationTime",
            "Rules",
            "Description",
            "ID",
            "AccessorID",
            "BootstrapSecret",
            "OneTimeSecretID",
        ]
    )
    bodies = st.dictionaries(keys, values, max_size=5) | values
    routes = st.sampled_from(
        [
            ("PUT", "/v1/acl/token"),
            ("POST", f"/v1/acl/token/{UUID}"),
            ("PUT", "/v1/acl/policy/x"),
            ("POST", "/v1/acl/role"),
            ("POST", f"/v1/acl/role/{UUID}"),
            ("PUT", "/v1/acl/bootstrap"),
            ("POST", "/v1/acl/token/onetime/exchange"),
            ("GET", "/v1/acl/token/self"),
            ("GET", "/v1/jobs"),
        ]
    )
    tokens = st.sampled_from(["", "mgmt", UUID, "x", "Bearer"]) | st.text(max_size=40)
    cases = st.lists(st.tuples(routes, bodies, tokens), min_size=1, max_size=15)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cases)
    def fuzz(batch: list[tuple[tuple[str, str], object, str]]) -> None:
        async def body(h: Harness) -> None:
            for (method, path), payload, token in batch:
                secret = h.management if token == "mgmt" else token
                if any(c in secret for c in "\r\n\x00") or not secret.isprintable():
                    continue  # not a header value an HTTP client can send
                status, text = await h.request(method, path, secret, payload if method != "GET" else None)
                assert status < 500, (method, path, payload, token, status, text)

        run(body)

    fuzz()


def test_mounting_a_host_volume_needs_its_mount_capability() -> None:
    def job(job_id: str, source: str, read_only: bool) -> dict[str, Any]:
        j = api_job(job_id)
        j["TaskGroups"][0]["Volumes"] = {"v": {"Type": "host", "Source": source, "ReadOnly": read_only}}
        return {"Job": j}

    async def body(h: Harness) -> None:
        submit = 'namespace "default" { policy = "write" }\n'
        plain = await h.token_for(submit)
        reader = await h.token_for(submit + 'host_volume "shared-*" { policy = "read" }')
        writer = await h.token_for(submit + 'host_volume "shared-*" { policy = "write" }')
        for token, source, read_only, status in [
            (plain, "shared-a", True, 403),  # no host_volume rule at all
            (reader, "shared-a", False, 403),  # read-write needs mount-readwrite
            (reader, "other", True, 403),  # the rule's glob does not cover it
            (reader, "shared-a", True, 200),
            (writer, "shared-a", False, 200),
            (h.management, "anything", False, 200),
        ]:
            got, text = await h.request(
                "PUT", "/v1/jobs", token, job(f"j{source}{read_only}", source, read_only)
            )
            assert got == status, (source, read_only, status, text)

    run(body)

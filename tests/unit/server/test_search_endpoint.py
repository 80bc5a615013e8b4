"""Search.PrefixSearch / Search.FuzzySearch, and what namespace reads show, on a fake-Raft server
with ACLs on: every answer leaves out what the caller's token may not read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomadd.server.search_endpoint import TRUNCATE_LIMIT
from nomadd.structs.acl import ACLPolicy, ACLToken
from nomadd.structs.config import ACLConfig
from nomadd.structs.errors import PermissionDeniedError, ValidationError
from nomadd.structs.requests.acl import (
    ACL_BOOTSTRAP,
    ACL_UPSERT_POLICIES,
    ACL_UPSERT_TOKENS,
    ACLBootstrapRequest,
    ACLUpsertPoliciesRequest,
    ACLUpsertTokensRequest,
)
from nomadd.structs.requests.namespace import NAMESPACE_GET, NAMESPACE_LIST, NamedGetRequest, NamedListRequest
from nomadd.structs.requests.search import (
    SEARCH_FUZZY,
    SEARCH_PREFIX,
    FuzzyMatch,
    FuzzySearchRequest,
    PrefixSearchRequest,
)
from nomadd.structs.requests.variables import VARIABLES_APPLY, VariablesApplyRequest, VarOp
from tests.unit.server.fakes import FakeServer, api_job


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


class _Cluster:
    def __init__(self, acl: bool) -> None:
        self.server = FakeServer(acl=ACLConfig(enabled=acl))
        self.mgmt = ""
        self._n = 0

    async def start(self) -> None:
        if self.server.ctx.acl.enabled:
            boot = (await self.server.rpc(ACL_BOOTSTRAP, ACLBootstrapRequest())).token
            assert boot is not None
            self.mgmt = boot.secret_id
        await self.server.add_namespace("secret")
        for job_id in ("web", "webcache", "worker"):
            await self.server.register_job(api_job(job_id, count=0))
        await self.server.register_job({**api_job("web-hidden", count=0), "Namespace": "secret"})
        for ns in ("default", "secret"):
            req = VariablesApplyRequest(
                op=VarOp.SET, path="web/cfg", items={"k": "v"}, namespace=ns, auth_token=self.mgmt
            )
            await self.server.rpc(VARIABLES_APPLY, req)

    async def token(self, rules: str) -> str:
        self._n += 1
        policy = ACLPolicy(name=f"p{self._n}", rules=rules)
        await self.server.rpc(
            ACL_UPSERT_POLICIES, ACLUpsertPoliciesRequest(policies=(policy,), auth_token=self.mgmt)
        )
        t = ACLToken(accessor_id="", secret_id="", policies=(policy.name,))
        reply = await self.server.rpc(
            ACL_UPSERT_TOKENS, ACLUpsertTokensRequest(tokens=(t,), auth_token=self.mgmt)
        )
        assert reply.token is not None
        return reply.token.secret_id


def test_prefix_search_contexts_and_truncation() -> None:
    async def main() -> None:
        c = _Cluster(acl=False)
        await c.start()
        s = c.server
        reply = await s.rpc(SEARCH_PREFIX, PrefixSearchRequest(prefix="web", context="jobs"))
        assert reply.matches == {"jobs": ("web", "webcache")} and reply.truncations == {"jobs": False}
        everywhere = await s.rpc(SEARCH_PREFIX, PrefixSearchRequest(prefix="web", namespace="*"))
        assert everywhere.matches["jobs"] == ("web", "webcache", "web-hidden")
        assert everywhere.matches["vars"] == ("web/cfg", "web/cfg")
        assert everywhere.matches["deployment"] == () and everywhere.matches["namespaces"] == ()
        pools = await s.rpc(SEARCH_PREFIX, PrefixSearchRequest(prefix="", context="node_pools"))
        assert pools.matches["node_pools"] == ("all", "default")
        for i in range(TRUNCATE_LIMIT + 1):
            await s.register_job(api_job(f"many-{i:02d}", count=0))
        many = await s.rpc(SEARCH_PREFIX, PrefixSearchRequest(prefix="many-", context="jobs"))
        assert len(many.matches["jobs"]) == TRUNCATE_LIMIT and many.truncations["jobs"] is True
        with pytest.raises(ValidationError, match="context must be one of"):
            await s.rpc(SEARCH_PREFIX, PrefixSearchRequest(prefix="", context="bogus"))

    _run(main())


def test_fuzzy_search_ranks_and_scopes() -> None:
    async def main() -> None:
        c = _Cluster(acl=False)
        await c.start()
        reply = await c.server.rpc(SEARCH_FUZZY, FuzzySearchRequest(text="EB", context="jobs"))
        assert reply.matches["jobs"][:2] == (
            FuzzyMatch(id="web", scope=("default", "web")),
            FuzzyMatch(id="webcache", scope=("default", "webcache")),
        )
        commands = await c.server.rpc(SEARCH_FUZZY, FuzzySearchRequest(text="sleep", context="jobs"))
        assert FuzzyMatch(id="/bin/sleep", scope=("default", "web", "g", "t")) in commands.matches["commands"]
        with pytest.raises(ValidationError, match="at least 2 characters, got 1"):
            await c.server.rpc(SEARCH_FUZZY, FuzzySearchRequest(text="w"))

    _run(main())


def test_search_and_namespaces_show_only_what_the_token_may_read() -> None:
    async def main() -> None:
        c = _Cluster(acl=True)
        await c.start()
        s = c.server
        reader = await c.token('namespace "default" { policy = "read" }')
        everywhere = await s.rpc(
            SEARCH_PREFIX, PrefixSearchRequest(prefix="web", namespace="*", auth_token=reader)
        )
        assert everywhere.matches["jobs"] == ("web", "webcache")  # not secret's web-hidden
        assert "nodes" not in everywhere.matches  # no node:read: the context is left out
        fuzzy = await s.rpc(SEARCH_FUZZY, FuzzySearchRequest(text="hidden", namespace="*", auth_token=reader))
        assert fuzzy.matches == {}
        with pytest.raises(PermissionDeniedError):
            await s.rpc(SEARCH_PREFIX, PrefixSearchRequest(prefix="", context="nodes", auth_token=reader))
        with pytest.raises(PermissionDeniedError):
            await s.rpc(
                SEARCH_PREFIX,
                PrefixSearchRequest(prefix="", context="jobs", namespace="secret", auth_token=reader),
            )
        listed = await s.rpc(NAMESPACE_LIST, NamedListRequest(auth_token=reader))
        assert [ns.name for ns in listed.namespaces] == ["default"]
        with pytest.raises(PermissionDeniedError):
            await s.rpc(NAMESPACE_GET, NamedGetRequest(name="secret", auth_token=reader))
        everything = await s.rpc(NAMESPACE_LIST, NamedListRequest(auth_token=c.mgmt))
        assert [ns.name for ns in everything.namespaces] == ["default", "secret"]
        var_reader = await c.token(
            'namespace "secret" { variables { path "web/*" { capabilities = ["list"] } } }'
        )
        found = await s.rpc(
            SEARCH_PREFIX,
            PrefixSearchRequest(prefix="", context="vars", namespace="*", auth_token=var_reader),
        )
        assert found.matches["vars"] == ("web/cfg",)

    _run(main())

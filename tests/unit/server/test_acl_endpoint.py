"""ACL.* through the typed RPC: a follower replaying the entries from bytes reaches the same state,
the dump/restore of a snapshot keeps it, and non-management callers are refused."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from nomadd.server.state import store_acl
from nomadd.server.state.store import StateStore
from nomadd.structs.acl import ACLPolicy, ACLRole, ACLRoleLink, ACLToken
from nomadd.structs.config import ACLConfig
from nomadd.structs.errors import PermissionDeniedError
from nomadd.structs.requests.acl import (
    ACL_BOOTSTRAP,
    ACL_EXCHANGE_ONE_TIME_TOKEN,
    ACL_RESOLVE_TOKEN,
    ACL_UPSERT_ONE_TIME_TOKEN,
    ACL_UPSERT_POLICIES,
    ACL_UPSERT_ROLES,
    ACL_UPSERT_TOKENS,
    ACLBootstrapRequest,
    ACLGetRequest,
    ACLListRequest,
    ACLOneTimeExchangeRequest,
    ACLUpsertPoliciesRequest,
    ACLUpsertRolesRequest,
    ACLUpsertTokensRequest,
)
from tests.unit.server.fakes import FakeServer


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_entries_replay_on_a_follower_and_survive_a_snapshot() -> None:
    async def main() -> None:
        s = FakeServer(acl=ACLConfig(enabled=True))
        boot = (await s.rpc(ACL_BOOTSTRAP, ACLBootstrapRequest())).token
        assert boot is not None
        mgmt = boot.secret_id
        policy = ACLPolicy(name="ro", rules='namespace "default" { policy = "read" }')
        await s.rpc(ACL_UPSERT_POLICIES, ACLUpsertPoliciesRequest(policies=(policy,), auth_token=mgmt))
        role = (
            await s.rpc(
                ACL_UPSERT_ROLES,
                ACLUpsertRolesRequest(roles=(ACLRole(id="", name="r", policies=("ro",)),), auth_token=mgmt),
            )
        ).role
        assert role is not None
        token = ACLToken(
            accessor_id="", secret_id="", roles=(ACLRoleLink(name="r"),), expiration_ttl=3600 * 10**9
        )
        client = (
            await s.rpc(ACL_UPSERT_TOKENS, ACLUpsertTokensRequest(tokens=(token,), auth_token=mgmt))
        ).token
        assert client is not None and client.roles == (ACLRoleLink(id=role.id, name="r"),)
        ott = (
            await s.rpc(ACL_UPSERT_ONE_TIME_TOKEN, ACLListRequest(auth_token=client.secret_id))
        ).one_time_token
        await s.rpc(
            ACL_EXCHANGE_ONE_TIME_TOKEN, ACLOneTimeExchangeRequest(one_time_secret_id=ott.one_time_secret_id)
        )
        resolved = await s.rpc(ACL_RESOLVE_TOKEN, ACLGetRequest(key=client.secret_id))
        assert [p.name for p in resolved.policies] == ["ro"]
        with pytest.raises(PermissionDeniedError):
            await s.rpc(
                ACL_UPSERT_POLICIES, ACLUpsertPoliciesRequest(policies=(policy,), auth_token=client.secret_id)
            )

        leader = s.store.snapshot()
        follower = s.follower().store.snapshot()
        restored = StateStore()
        restored.restore(s.store.dump())
        for snap in (follower, restored.snapshot()):
            for table in (
                *store_acl.TABLES,
                store_acl.SECRETS_TABLE,
                store_acl.ONE_TIME_TABLE,
                store_acl.BOOTSTRAP_TABLE,
            ):
                assert dict(snap.table(table)) == dict(leader.table(table)), table
        assert store_acl.token_by_secret(leader, client.secret_id) == client

    _run(main())


def test_every_rpc_method_has_a_rule_and_checks_it() -> None:
    """Over the internal RPC every method checks its rule for the envelope's token (the methods
    clients and servers call for themselves are ``internal``: authenticated by the internal RPC)."""
    from nomadd.server.acl.rules import RPC_RULES, authorize_rpc
    from nomadd.structs.requests import Envelope
    from nomadd.structs.requests.variables import VariablesApplyRequest, VarOp
    from tests.unit.agent.test_acl_routes import _policy

    async def main() -> None:
        s = FakeServer(acl=ACLConfig(enabled=True))
        names = s.registry.names()
        assert [n for n in names if n not in RPC_RULES] == [], "rpc methods without an ACL rule"
        boot = (await s.rpc(ACL_BOOTSTRAP, ACLBootstrapRequest())).token
        assert boot is not None
        n = 0

        async def token(rules: str) -> str:
            nonlocal n
            n += 1
            policy = ACLPolicy(name=f"p{n}", rules=rules)
            await s.rpc(
                ACL_UPSERT_POLICIES, ACLUpsertPoliciesRequest(policies=(policy,), auth_token=boot.secret_id)
            )
            t = ACLToken(accessor_id="", secret_id="", policies=(policy.name,))
            reply = await s.rpc(
                ACL_UPSERT_TOKENS, ACLUpsertTokensRequest(tokens=(t,), auth_token=boot.secret_id)
            )
            assert reply.token is not None
            return reply.token.secret_id

        acl = s.ctx.acl
        for name in names:
            rule = RPC_RULES[name]
            if rule.kind in ("public", "internal", "self"):
                await authorize_rpc(acl, name, Envelope())
                continue
            with pytest.raises(PermissionDeniedError):
                await authorize_rpc(acl, name, Envelope())
            granted = boot.secret_id if rule.kind == "management" else await token(_policy(rule))
            await authorize_rpc(acl, name, Envelope(auth_token=granted))
            other = await token(_policy(None, exclude=rule))
            with pytest.raises(PermissionDeniedError):
                await authorize_rpc(acl, name, Envelope(auth_token=other))
        # a variable delete needs "destroy"
        writer = await token('namespace "default" { variables { path "*" { capabilities = ["write"] } } }')
        delete = VariablesApplyRequest(op=VarOp.DELETE, path="a", auth_token=writer)
        with pytest.raises(PermissionDeniedError):
            await authorize_rpc(acl, "Variables.Apply", delete)
        # a server's own request (its caller verified by the internal RPC) needs no token
        from nomadd.rpc.auth import server_caller

        await authorize_rpc(acl, "Operator.RaftRemovePeerByAddress", Envelope(caller=server_caller()))

    _run(main())


def test_a_node_may_drain_and_read_itself_with_its_secret_as_token() -> None:
    """drain_on_shutdown with ACLs: the client's own SecretID is its token for Node.UpdateDrain
    and Node.GetNode of its own node, and for nothing else (an API user relayed by the client
    agent does not know it)."""
    from nomadd.server.acl.rules import authorize_rpc
    from nomadd.structs.node import DrainStrategy
    from nomadd.structs.requests import Caller, CallerKind
    from nomadd.structs.requests.node import NodeSpecificRequest, NodeUpdateDrainRequest

    async def main() -> None:
        s = FakeServer(acl=ACLConfig(enabled=True))
        node = await s.add_node(secret_id=str(uuid.uuid4()))  # real node secrets are UUIDs
        other = await s.add_node(secret_id=str(uuid.uuid4()))
        acl = s.ctx.acl
        me = Caller(kind=CallerKind.NODE, node_id=node.id)

        def drain(node_id: str, token: str, caller: Caller = me) -> NodeUpdateDrainRequest:
            return NodeUpdateDrainRequest(
                node_id=node_id, drain_strategy=DrainStrategy(), auth_token=token, caller=caller
            )

        snap = s.store.snapshot
        await authorize_rpc(acl, "Node.UpdateDrain", drain(node.id, node.secret_id), snap)
        get = NodeSpecificRequest(node_id=node.id, auth_token=node.secret_id, caller=me)
        await authorize_rpc(acl, "Node.GetNode", get, snap)
        refused = [
            ("Node.UpdateDrain", drain(node.id, "")),  # relayed user without a token
            ("Node.UpdateDrain", drain(node.id, other.secret_id)),  # another node's secret
            ("Node.UpdateDrain", drain(other.id, node.secret_id)),  # another node
            ("Node.UpdateDrain", drain(other.id, other.secret_id)),  # its secret, but not its caller
            ("Node.UpdateEligibility", drain(node.id, node.secret_id)),  # not a self method
            ("Node.UpdateDrain", drain(node.id, node.secret_id, Caller())),  # not a node caller
        ]
        for name, req in refused:
            with pytest.raises(PermissionDeniedError):
                await authorize_rpc(acl, name, req, snap)

    _run(main())

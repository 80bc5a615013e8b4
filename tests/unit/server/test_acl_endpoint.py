"""ACL.* through the typed RPC: a follower replaying the entries from bytes reaches the same state,
the dump/restore of a snapshot keeps it, and non-management callers are refused."""

from __future__ import annotations

import asyncio
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

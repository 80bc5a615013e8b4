"""A client-only agent's token cache: kept for token_ttl, and no longer than policy_ttl or
role_ttl when the answer depends on policies or roles; and a follower's source, which asks the
leader about a secret it does not hold yet."""

from __future__ import annotations

import asyncio
from unittest.mock import patch

from nomadd.server.acl.resolver import ACLResolver, Resolved, follower_source
from nomadd.structs.acl import ACLPolicy, ACLRoleLink, ACLToken
from nomadd.structs.config import ACLConfig

SECRET = "11111111-2222-3333-4444-555555555555"
POLICY = ACLPolicy(name="p", rules='namespace "default" { policy = "read" }')


def _token(*, roles: bool) -> ACLToken:
    return ACLToken(
        accessor_id="a",
        secret_id=SECRET,
        type="client",
        policies=("p",),
        roles=(ACLRoleLink(id="r", name="r"),) if roles else (),
    )


def _asks(resolved: Resolved, config: ACLConfig, after_s: float) -> int:
    """How many times the servers are asked for one secret, looked up now and ``after_s`` later."""
    asked = 0

    async def source(secret: str) -> Resolved:
        nonlocal asked
        asked += 1
        return resolved

    async def main() -> None:
        resolver = ACLResolver(config, source, cache_tokens=True)
        with patch("nomadd.server.acl.resolver.time.monotonic", return_value=1000.0):
            await resolver.lookup(SECRET)
        with patch("nomadd.server.acl.resolver.time.monotonic", return_value=1000.0 + after_s):
            await resolver.lookup(SECRET)

    asyncio.run(main())
    return asked


def test_token_cache_ttls() -> None:
    cfg = ACLConfig(enabled=True, token_ttl=30.0, policy_ttl=10.0, role_ttl=5.0)
    with_policy = Resolved(token=_token(roles=False), policies=(POLICY,))
    with_role = Resolved(token=_token(roles=True), policies=(POLICY,))
    bare = Resolved(token=_token(roles=False), policies=())
    assert _asks(bare, cfg, 29.0) == 1  # token_ttl
    assert _asks(bare, cfg, 31.0) == 2
    assert _asks(with_policy, cfg, 9.0) == 1  # policy_ttl, shorter
    assert _asks(with_policy, cfg, 11.0) == 2
    assert _asks(with_role, cfg, 4.0) == 1  # role_ttl, shorter still
    assert _asks(with_role, cfg, 6.0) == 2
    long_policy = ACLConfig(enabled=True, token_ttl=30.0, policy_ttl=60.0, role_ttl=60.0)
    assert _asks(with_role, long_policy, 31.0) == 2  # never longer than token_ttl


def _follower(local: Resolved, leader: Resolved | None, leading: bool) -> tuple[Resolved, list[str]]:
    """What a server's source answers, and which secrets it asked the leader about."""
    asked: list[str] = []

    async def from_state(secret: str) -> Resolved:
        return local

    async def ask_leader(secret: str) -> Resolved | None:
        asked.append(secret)
        return leader

    source = follower_source(from_state, lambda: leading, ask_leader)
    return asyncio.run(source(SECRET)), asked


def test_a_follower_asks_the_leader_about_a_secret_its_state_does_not_hold_yet() -> None:
    """A token created through another server a moment ago: this follower has not applied it
    (CI saw a policy write with the new management token refused 403 on a follower)."""
    unknown = Resolved(token=None, policies=(), found=False)
    known = Resolved(token=_token(roles=False), policies=(POLICY,))
    assert _follower(unknown, known, leading=False) == (known, [SECRET])
    assert _follower(unknown, None, leading=False) == (unknown, [SECRET])  # no leader answered
    assert _follower(unknown, known, leading=True) == (unknown, [])  # the leader's state decides
    assert _follower(known, None, leading=False) == (known, [])  # held here: no round trip

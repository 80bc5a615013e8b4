"""Secret ID → compiled :class:`~nomadd.server.acl.acl.ACL` (Nomad's ``ResolveToken``): the ONE
function every check goes through.

A server resolves from its own state (``local_source``); a follower asks the leader about a
secret its state does not hold (``follower_source``: a token created a moment ago through
another server, which this one has not applied yet; Nomad forwards a write before it checks
the token, so the leader decides there too); a client-only agent asks its servers
(``ACL.ResolveToken``: the token with its policies, those of its roles included) and caches the
answer for ``acl.token_ttl``, and no longer than ``acl.policy_ttl`` when it carries policies or
``acl.role_ttl`` when the token has roles: a changed token, policy or role is seen there within
its TTL (Nomad's client caches each kind for its own TTL). Compiled ACLs are cached by the
policies they were built from (name and modify index), so a changed policy is seen at once on a
server. Errors are Nomad's: an unknown secret ``403 ACL token not found``, an expired one
``403 ACL token expired``, a secret that is not a UUID ``400``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from nomadd.server.acl.acl import ACL, MANAGEMENT_ACL, compile_acl
from nomadd.server.acl.policy import parse
from nomadd.server.state import store_acl
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.acl import ANONYMOUS_POLICY, ACLPolicy, ACLToken
from nomadd.structs.config import ACLConfig
from nomadd.structs.errors import PermissionDeniedError, ValidationError

__all__ = [
    "ERR_PERMISSION_DENIED",
    "ERR_TOKEN_EXPIRED",
    "ERR_TOKEN_NOT_FOUND",
    "ACLResolver",
    "Resolved",
    "check_secret",
    "follower_source",
    "local_source",
]

ERR_PERMISSION_DENIED = "Permission denied"
ERR_TOKEN_NOT_FOUND = "ACL token not found"
ERR_TOKEN_EXPIRED = "ACL token expired"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """What a source knows about a secret: ``token`` (``None``: anonymous or unknown, see
    ``found``) and the policies it reaches directly and through its roles."""

    token: ACLToken | None
    policies: tuple[ACLPolicy, ...]
    found: bool = True


Source = Callable[[str], Awaitable[Resolved]]


def check_secret(secret: str) -> None:
    if not _UUID.match(secret):
        raise ValidationError("malformed ACL token: the secret ID must be a UUID")


def resolve_in(snap: StateSnapshot, secret: str) -> Resolved:
    """Look ``secret`` up in a state snapshot (``""``: the anonymous policy)."""
    if not secret:
        anonymous = store_acl.get_policy(snap, ANONYMOUS_POLICY)
        return Resolved(token=None, policies=(anonymous,) if anonymous else ())
    token = store_acl.token_by_secret(snap, secret)
    if token is None:
        return Resolved(token=None, policies=(), found=False)
    names = list(token.policies)
    for link in token.roles:
        role = store_acl.get_role(snap, link.id) if link.id else store_acl.get_role_by_name(snap, link.name)
        if role is not None:
            names.extend(role.policies)
    policies = tuple(p for name in dict.fromkeys(names) if (p := store_acl.get_policy(snap, name)))
    return Resolved(token=token, policies=policies)


def local_source(snapshot: Callable[[], StateSnapshot]) -> Source:
    async def source(secret: str) -> Resolved:
        return resolve_in(snapshot(), secret)

    return source


def follower_source(
    local: Source, is_leader: Callable[[], bool], ask_leader: Callable[[str], Awaitable[Resolved | None]]
) -> Source:
    """``local``, and for a secret it does not know while this server follows, the leader's
    answer (``ask_leader``: None when no leader answered, then the secret is unknown)."""

    async def source(secret: str) -> Resolved:
        resolved = await local(secret)
        if resolved.found or is_leader():
            return resolved
        return await ask_leader(secret) or resolved

    return source


class ACLResolver:
    def __init__(self, config: ACLConfig, source: Source, *, cache_tokens: bool = False) -> None:
        self.config = config
        self._source = source
        self._cache_tokens = cache_tokens
        self._tokens: dict[str, tuple[float, Resolved]] = {}
        self._compiled: dict[tuple[tuple[str, int], ...], ACL] = {}

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    async def lookup(self, secret: str) -> Resolved:
        """The token and policies of ``secret``, checked: raises for malformed, unknown, expired."""
        if secret:
            check_secret(secret)
        now = time.monotonic()
        cached = self._tokens.get(secret) if self._cache_tokens else None
        if cached is not None and cached[0] > now:
            resolved = cached[1]
        else:
            resolved = await self._source(secret)
            if self._cache_tokens:
                if len(self._tokens) > 4096:
                    self._tokens.clear()
                self._tokens[secret] = (now + self.cache_ttl(resolved), resolved)
        if not resolved.found:
            raise PermissionDeniedError(ERR_TOKEN_NOT_FOUND)
        if resolved.token is not None and resolved.token.expired(time.time_ns()):
            raise PermissionDeniedError(ERR_TOKEN_EXPIRED)
        return resolved

    def cache_ttl(self, resolved: Resolved) -> float:
        """How long a client-only agent keeps ``resolved``."""
        ttl = self.config.token_ttl
        if resolved.policies:
            ttl = min(ttl, self.config.policy_ttl)
        if resolved.token is not None and resolved.token.roles:
            ttl = min(ttl, self.config.role_ttl)
        return ttl

    async def resolve(self, secret: str) -> ACL:
        """The ACL of ``secret`` (management when ACLs are off)."""
        if not self.config.enabled:
            return MANAGEMENT_ACL
        resolved = await self.lookup(secret)
        if resolved.token is not None and resolved.token.is_management:
            return MANAGEMENT_ACL
        return self.compile(resolved.policies)

    def compile(self, policies: Iterable[ACLPolicy]) -> ACL:
        policies = tuple(policies)
        key = tuple((p.name, p.modify_index) for p in policies)
        acl = self._compiled.get(key)
        if acl is None:
            if len(self._compiled) > 1024:
                self._compiled.clear()
            acl = compile_acl(parse(p.rules) for p in policies)
            self._compiled[key] = acl
        return acl

    def forget(self) -> None:
        self._tokens.clear()

"""``ACL.*`` RPCs (Nomad's acl_endpoint.go): bootstrap, tokens, policies, roles, one-time tokens.

Each method opens the same way: refuse when ACLs are off (``400 ACL support disabled``), resolve
the caller (``ctx.acl``), check, then act. IDs, secrets and times are made here; the FSM only
stores them. The bootstrap reset file (``acl-bootstrap-reset`` in the server's data dir, holding
the reset index Nomad's error names) allows one more bootstrap, as in Nomad.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path

from nomadd.helper.duration import format_duration
from nomadd.rpc import RPCRegistry
from nomadd.server.acl.acl import ACL
from nomadd.server.acl.policy import parse
from nomadd.server.acl.resolver import (
    ERR_PERMISSION_DENIED,
    ERR_TOKEN_NOT_FOUND,
    check_secret,
    resolve_in,
)
from nomadd.server.context import ServerContext
from nomadd.server.state import store_acl
from nomadd.server.state.store import StateSnapshot
from nomadd.server.state.store_acl import BootstrapResult
from nomadd.structs.acl import (
    ACL_CLIENT_TOKEN,
    ACL_MANAGEMENT_TOKEN,
    ACLOneTimeToken,
    ACLPolicy,
    ACLRole,
    ACLRoleLink,
    ACLToken,
)
from nomadd.structs.errors import NotFoundError, PermissionDeniedError, ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import Envelope, QueryMeta, WriteMeta
from nomadd.structs.requests.acl import (
    ACL_BOOTSTRAP,
    ACL_DELETE_POLICIES,
    ACL_DELETE_ROLES,
    ACL_DELETE_TOKENS,
    ACL_EXCHANGE_ONE_TIME_TOKEN,
    ACL_GET_POLICY,
    ACL_GET_ROLE,
    ACL_GET_TOKEN,
    ACL_LIST_POLICIES,
    ACL_LIST_ROLES,
    ACL_LIST_TOKENS,
    ACL_RESOLVE_TOKEN,
    ACL_UPSERT_ONE_TIME_TOKEN,
    ACL_UPSERT_POLICIES,
    ACL_UPSERT_ROLES,
    ACL_UPSERT_TOKENS,
    ACLBootstrapEntry,
    ACLBootstrapRequest,
    ACLDeleteEntry,
    ACLDeleteRequest,
    ACLGetRequest,
    ACLListRequest,
    ACLOneTimeExchangeEntry,
    ACLOneTimeExchangeRequest,
    ACLOneTimeTokenEntry,
    ACLOneTimeTokenReply,
    ACLPoliciesEntry,
    ACLPolicyListReply,
    ACLPolicyReply,
    ACLResolveReply,
    ACLRoleListReply,
    ACLRoleReply,
    ACLRolesEntry,
    ACLTokenListReply,
    ACLTokenReply,
    ACLTokensEntry,
    ACLUpsertPoliciesRequest,
    ACLUpsertRolesRequest,
    ACLUpsertTokensRequest,
    ACLWriteReply,
)

logger = logging.getLogger(__name__)

__all__ = ["BOOTSTRAP_RESET_FILE", "ONE_TIME_TOKEN_TTL_S", "ACLEndpoint"]

BOOTSTRAP_RESET_FILE = "acl-bootstrap-reset"
ONE_TIME_TOKEN_TTL_S = 600.0  # Nomad's one-time tokens live 10 minutes
_NAME = re.compile(r"^[a-zA-Z0-9-]{1,128}$")  # Nomad's validPolicyName / validACLRoleName
_TABLES = store_acl.TABLES


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise ValidationError(f"invalid {kind} name {name!r}: 1-128 letters, digits or dashes")


class ACLEndpoint:
    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx

    def register(self, registry: RPCRegistry) -> None:
        registry.register(ACL_BOOTSTRAP, self.bootstrap, kind="write")
        registry.register(ACL_UPSERT_TOKENS, self.upsert_tokens, kind="write")
        registry.register(ACL_DELETE_TOKENS, self.delete_tokens, kind="write")
        registry.register(ACL_GET_TOKEN, self.get_token, kind="read")
        registry.register(ACL_LIST_TOKENS, self.list_tokens, kind="read")
        registry.register(ACL_RESOLVE_TOKEN, self.resolve_token, kind="local")
        registry.register(ACL_UPSERT_POLICIES, self.upsert_policies, kind="write")
        registry.register(ACL_DELETE_POLICIES, self.delete_policies, kind="write")
        registry.register(ACL_GET_POLICY, self.get_policy, kind="read")
        registry.register(ACL_LIST_POLICIES, self.list_policies, kind="read")
        registry.register(ACL_UPSERT_ROLES, self.upsert_roles, kind="write")
        registry.register(ACL_DELETE_ROLES, self.delete_roles, kind="write")
        registry.register(ACL_GET_ROLE, self.get_role, kind="read")
        registry.register(ACL_LIST_ROLES, self.list_roles, kind="read")
        registry.register(ACL_UPSERT_ONE_TIME_TOKEN, self.upsert_one_time_token, kind="write")
        registry.register(ACL_EXCHANGE_ONE_TIME_TOKEN, self.exchange_one_time_token, kind="write")

    # ---- the opening lines of every method -------------------------------------------------
    def _enabled(self) -> None:
        if not self._ctx.acl.enabled:
            raise ValidationError("ACL support disabled")

    async def _management(self, req: Envelope) -> ACL:
        self._enabled()
        acl = await self._ctx.acl.resolve(req.auth_token)
        if not acl.management:
            raise PermissionDeniedError(ERR_PERMISSION_DENIED)
        return acl

    # ---- bootstrap -------------------------------------------------------------------------
    def _reset_file(self) -> Path | None:
        data_dir = self._ctx.config.data_dir
        return Path(data_dir) / BOOTSTRAP_RESET_FILE if data_dir else None

    def _read_reset_index(self) -> int:
        path = self._reset_file()
        if path is None or not path.exists():
            return 0
        text = path.read_text().strip()
        try:
            return int(text)
        except ValueError:
            raise ValidationError(f"invalid bootstrap reset index in {path}: {text[:32]!r}") from None

    async def bootstrap(self, req: ACLBootstrapRequest) -> ACLTokenReply:
        self._enabled()
        secret = req.bootstrap_secret or str(uuid.uuid4())
        if req.bootstrap_secret:
            check_secret(req.bootstrap_secret)
        reset_index = await asyncio.to_thread(self._read_reset_index)
        token = ACLToken(
            accessor_id=str(uuid.uuid4()),
            secret_id=secret,
            name="Bootstrap Token",
            type=ACL_MANAGEMENT_TOKEN,
            global_=True,
            create_time=time.time_ns(),
        )
        result, index = await self._ctx.propose(
            MessageType.ACL_TOKEN_BOOTSTRAP, ACLBootstrapEntry(token=token, reset_index=reset_index)
        )
        assert isinstance(result, BootstrapResult)
        if result.token is None:
            raise ValidationError(f"ACL bootstrap already done (reset index: {result.reset_index})")
        path = self._reset_file()
        if reset_index and path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        logger.info("acl bootstrapped index=%d accessor_id=%s", index, result.token.accessor_id)
        return ACLTokenReply(meta=QueryMeta(index=index), token=result.token)

    # ---- tokens ----------------------------------------------------------------------------
    def _check_token(self, snap: StateSnapshot, token: ACLToken, now: int) -> ACLToken:
        if token.type not in (ACL_CLIENT_TOKEN, ACL_MANAGEMENT_TOKEN):
            raise ValidationError(f"token type must be client or management, not {token.type!r}")
        if token.type == ACL_MANAGEMENT_TOKEN and (token.policies or token.roles):
            raise ValidationError("management tokens cannot be associated with policies or roles")
        if token.type == ACL_CLIENT_TOKEN and not (token.policies or token.roles):
            raise ValidationError("client token missing policies or roles")
        for name in token.policies:
            if store_acl.get_policy(snap, name) is None:
                raise ValidationError(f"cannot find policy {name!r}")
        links = []
        for link in token.roles:
            role = (
                store_acl.get_role(snap, link.id) if link.id else store_acl.get_role_by_name(snap, link.name)
            )
            if role is None:
                raise ValidationError(f"cannot find role {link.id or link.name!r}")
            links.append(ACLRoleLink(id=role.id, name=role.name))
        token = replace(token, roles=tuple(links), policies=tuple(dict.fromkeys(token.policies)))
        if token.expiration_ttl < 0:
            raise ValidationError("ExpirationTTL must not be negative")
        if token.accessor_id:
            current = store_acl.get_token(snap, token.accessor_id)
            if current is None:
                raise NotFoundError(f"cannot find token {token.accessor_id!r}")
            return token
        expires = token.expiration_time
        if token.expiration_ttl:
            if token.expiration_time:
                raise ValidationError("Expiration TTL and Expiration Time cannot both be set")
            expires = now + token.expiration_ttl
        if expires and expires <= now:
            raise ValidationError("ExpirationTime must be in the future")
        if expires:
            self._check_expiry((expires - now) / 1e9)
        return replace(
            token,
            accessor_id=str(uuid.uuid4()),
            secret_id=str(uuid.uuid4()),
            create_time=now,
            expiration_time=expires,
        )

    def _check_expiry(self, expires_in: float) -> None:
        """Nomad's bounds on a new token's life (``acl.token_min/max_expiration_ttl``)."""
        cfg = self._ctx.config.acl
        if expires_in > cfg.token_max_expiration_ttl:
            raise ValidationError(
                f"expiration time cannot be more than {format_duration(cfg.token_max_expiration_ttl)} "
                f"in the future (was {format_duration(round(expires_in))})"
            )
        if expires_in < cfg.token_min_expiration_ttl:
            raise ValidationError(
                f"expiration time cannot be less than {format_duration(cfg.token_min_expiration_ttl)} "
                f"in the future (was {format_duration(round(expires_in))})"
            )

    async def upsert_tokens(self, req: ACLUpsertTokensRequest) -> ACLTokenReply:
        await self._management(req)
        if not req.tokens:
            raise ValidationError("must specify at least one token")
        snap, now = self._ctx.store.snapshot(), time.time_ns()
        tokens = tuple(self._check_token(snap, t, now) for t in req.tokens)
        result, index = await self._ctx.propose(MessageType.ACL_TOKEN_UPSERT, ACLTokensEntry(tokens=tokens))
        assert isinstance(result, tuple)
        return ACLTokenReply(meta=QueryMeta(index=index), token=result[0], tokens=result)

    async def delete_tokens(self, req: ACLDeleteRequest) -> ACLWriteReply:
        await self._management(req)
        snap = self._ctx.store.snapshot()
        for accessor in req.keys:
            if store_acl.get_token(snap, accessor) is None:
                raise NotFoundError(f"Cannot find token {accessor!r}")
        _, index = await self._ctx.propose(MessageType.ACL_TOKEN_DELETE, ACLDeleteEntry(keys=req.keys))
        return ACLWriteReply(meta=WriteMeta(index=index))

    async def get_token(self, req: ACLGetRequest) -> ACLTokenReply:
        self._enabled()
        caller = await self._ctx.acl.lookup(req.auth_token)
        if req.key == "self":
            if caller.token is None:
                raise PermissionDeniedError(ERR_TOKEN_NOT_FOUND)
            key = caller.token.accessor_id
        else:
            key = req.key
            own = caller.token is not None and caller.token.accessor_id == key
            if not own and not (caller.token is not None and caller.token.is_management):
                raise PermissionDeniedError(ERR_PERMISSION_DENIED)

        def fn(snap: StateSnapshot) -> ACLToken | None:
            return store_acl.get_token(snap, key)

        token, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return ACLTokenReply(meta=meta, token=token)

    async def list_tokens(self, req: ACLListRequest) -> ACLTokenListReply:
        await self._management(req)

        def fn(snap: StateSnapshot) -> tuple[ACLToken, ...]:
            return tuple(store_acl.list_tokens(snap, req.prefix))

        tokens, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return ACLTokenListReply(meta=meta, tokens=tokens)

    async def resolve_token(self, req: ACLGetRequest) -> ACLResolveReply:
        """For a client-only agent's checks, and a follower's that does not hold the secret yet
        (``forwarded``: answered from this server's state alone, never asked further): the token
        and policies of the secret in ``key`` (whoever holds a secret may resolve it)."""
        if not self._ctx.acl.enabled:
            return ACLResolveReply(meta=QueryMeta(), acl_enabled=False)
        if req.forwarded:
            check_secret(req.key)
            if not resolve_in(self._ctx.store.snapshot(), req.key).found:
                raise PermissionDeniedError(ERR_TOKEN_NOT_FOUND)
        await self._ctx.acl.lookup(req.key)  # raises for malformed, unknown, expired
        resolved = resolve_in(self._ctx.store.snapshot(), req.key)
        return ACLResolveReply(meta=QueryMeta(), token=resolved.token, policies=resolved.policies)

    # ---- policies --------------------------------------------------------------------------
    async def upsert_policies(self, req: ACLUpsertPoliciesRequest) -> ACLWriteReply:
        await self._management(req)
        if not req.policies:
            raise ValidationError("must specify at least one policy")
        for policy in req.policies:
            _check_name("policy", policy.name)
            if len(policy.description) > 256:
                raise ValidationError("policy description longer than 256 characters")
            parse(policy.rules)
        _, index = await self._ctx.propose(
            MessageType.ACL_POLICY_UPSERT, ACLPoliciesEntry(policies=req.policies)
        )
        return ACLWriteReply(meta=WriteMeta(index=index))

    async def delete_policies(self, req: ACLDeleteRequest) -> ACLWriteReply:
        await self._management(req)
        _, index = await self._ctx.propose(MessageType.ACL_POLICY_DELETE, ACLDeleteEntry(keys=req.keys))
        return ACLWriteReply(meta=WriteMeta(index=index))

    async def _caller_policies(self, req: Envelope) -> set[str] | None:
        """``None``: the caller may read every policy (management); else the names it holds."""
        self._enabled()
        caller = await self._ctx.acl.lookup(req.auth_token)
        if caller.token is not None and caller.token.is_management:
            return None
        return {p.name for p in caller.policies}

    async def get_policy(self, req: ACLGetRequest) -> ACLPolicyReply:
        allowed = await self._caller_policies(req)
        if allowed is not None and req.key not in allowed:
            raise PermissionDeniedError(ERR_PERMISSION_DENIED)

        def fn(snap: StateSnapshot) -> ACLPolicy | None:
            return store_acl.get_policy(snap, req.key)

        policy, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return ACLPolicyReply(meta=meta, policy=policy)

    async def list_policies(self, req: ACLListRequest) -> ACLPolicyListReply:
        allowed = await self._caller_policies(req)

        def fn(snap: StateSnapshot) -> tuple[ACLPolicy, ...]:
            found = store_acl.list_policies(snap, req.prefix)
            return tuple(p for p in found if allowed is None or p.name in allowed)

        policies, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return ACLPolicyListReply(meta=meta, policies=policies)

    # ---- roles -----------------------------------------------------------------------------
    async def upsert_roles(self, req: ACLUpsertRolesRequest) -> ACLRoleReply:
        await self._management(req)
        if not req.roles:
            raise ValidationError("must specify at least one role")
        snap = self._ctx.store.snapshot()
        roles = []
        for role in req.roles:
            _check_name("role", role.name)
            if not role.policies:
                raise ValidationError("at least one policy should be specified")
            for name in role.policies:
                if store_acl.get_policy(snap, name) is None:
                    raise ValidationError(f"cannot find policy {name!r}")
            same_name = store_acl.get_role_by_name(snap, role.name)
            if role.id:
                if store_acl.get_role(snap, role.id) is None:
                    raise NotFoundError(f"cannot find role {role.id!r}")
            else:
                role = replace(role, id=str(uuid.uuid4()))
            if same_name is not None and same_name.id != role.id:
                raise ValidationError(f"role with name {role.name!r} already exists")
            roles.append(replace(role, policies=tuple(dict.fromkeys(role.policies))))
        result, index = await self._ctx.propose(
            MessageType.ACL_ROLE_UPSERT, ACLRolesEntry(roles=tuple(roles))
        )
        assert isinstance(result, tuple)
        return ACLRoleReply(meta=QueryMeta(index=index), role=result[0], roles=result)

    async def delete_roles(self, req: ACLDeleteRequest) -> ACLWriteReply:
        await self._management(req)
        snap = self._ctx.store.snapshot()
        for role_id in req.keys:
            if store_acl.get_role(snap, role_id) is None:
                raise NotFoundError(f"cannot find role {role_id!r}")
        _, index = await self._ctx.propose(MessageType.ACL_ROLE_DELETE, ACLDeleteEntry(keys=req.keys))
        return ACLWriteReply(meta=WriteMeta(index=index))

    async def get_role(self, req: ACLGetRequest) -> ACLRoleReply:
        self._enabled()
        caller = await self._ctx.acl.lookup(req.auth_token)

        def fn(snap: StateSnapshot) -> ACLRole | None:
            if req.by_name:
                return store_acl.get_role_by_name(snap, req.key)
            return store_acl.get_role(snap, req.key)

        role, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        management = caller.token is not None and caller.token.is_management
        held = caller.token is not None and any(
            link.id == (role.id if role else "") for link in caller.token.roles
        )
        if not management and not held:
            raise PermissionDeniedError(ERR_PERMISSION_DENIED)
        return ACLRoleReply(meta=meta, role=role)

    async def list_roles(self, req: ACLListRequest) -> ACLRoleListReply:
        self._enabled()
        caller = await self._ctx.acl.lookup(req.auth_token)
        management = caller.token is not None and caller.token.is_management
        held = {link.id for link in caller.token.roles} if caller.token is not None else set()

        def fn(snap: StateSnapshot) -> tuple[ACLRole, ...]:
            return tuple(r for r in store_acl.list_roles(snap, req.prefix) if management or r.id in held)

        roles, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return ACLRoleListReply(meta=meta, roles=roles)

    # ---- one-time tokens -------------------------------------------------------------------
    async def upsert_one_time_token(self, req: ACLListRequest) -> ACLOneTimeTokenReply:
        self._enabled()
        caller = await self._ctx.acl.lookup(req.auth_token)
        if caller.token is None:
            raise PermissionDeniedError(ERR_PERMISSION_DENIED)
        ott = ACLOneTimeToken(
            one_time_secret_id=str(uuid.uuid4()),
            accessor_id=caller.token.accessor_id,
            expires_at=time.time_ns() + int(ONE_TIME_TOKEN_TTL_S * 1e9),
        )
        result, index = await self._ctx.propose(
            MessageType.ACL_ONE_TIME_TOKEN_UPSERT, ACLOneTimeTokenEntry(token=ott)
        )
        assert isinstance(result, ACLOneTimeToken)
        return ACLOneTimeTokenReply(meta=QueryMeta(index=index), one_time_token=result)

    async def exchange_one_time_token(self, req: ACLOneTimeExchangeRequest) -> ACLTokenReply:
        self._enabled()
        check_secret(req.one_time_secret_id)
        entry = ACLOneTimeExchangeEntry(one_time_secret_id=req.one_time_secret_id, now=time.time_ns())
        result, index = await self._ctx.propose(MessageType.ACL_ONE_TIME_TOKEN_EXCHANGE, entry)
        if result is None:
            raise PermissionDeniedError("one-time token not found or expired")
        assert isinstance(result, ACLToken)
        return ACLTokenReply(meta=QueryMeta(index=index), token=result)

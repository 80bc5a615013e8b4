"""The ACL tables: tokens (by accessor ID, and their secrets), policies, roles, one-time tokens
and the bootstrap marker.

Writes come only from the FSM. A refused bootstrap is a rule rejection returned as a value
(:class:`BootstrapResult`), never raised: every server reaches the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nomadd.server.state.store import StateSnapshot, Txn, register_table
from nomadd.structs.acl import ACLOneTimeToken, ACLPolicy, ACLRole, ACLToken
from nomadd.structs.codec import from_wire, to_wire

__all__ = [
    "BOOTSTRAP_TABLE",
    "ONE_TIME_TABLE",
    "POLICIES_TABLE",
    "ROLES_TABLE",
    "SECRETS_TABLE",
    "TABLES",
    "TOKENS_TABLE",
    "BootstrapResult",
    "bootstrap_index",
    "bootstrap_locked",
    "delete_policies_locked",
    "delete_roles_locked",
    "delete_tokens_locked",
    "exchange_one_time_locked",
    "get_policy",
    "get_role",
    "get_role_by_name",
    "get_token",
    "list_policies",
    "list_roles",
    "list_tokens",
    "token_by_secret",
    "upsert_one_time_locked",
    "upsert_policies_locked",
    "upsert_roles_locked",
    "upsert_tokens_locked",
]

TOKENS_TABLE = "acl_tokens"
SECRETS_TABLE = "acl_token_secrets"  # secret ID -> accessor ID
POLICIES_TABLE = "acl_policies"
ROLES_TABLE = "acl_roles"
ONE_TIME_TABLE = "acl_one_time_tokens"
BOOTSTRAP_TABLE = "acl_bootstrap"  # "index" -> the Raft index of the last bootstrap
TABLES = (TOKENS_TABLE, POLICIES_TABLE, ROLES_TABLE)

register_table(TOKENS_TABLE, to_wire, lambda raw: from_wire(ACLToken, raw))
register_table(SECRETS_TABLE)
register_table(POLICIES_TABLE, to_wire, lambda raw: from_wire(ACLPolicy, raw))
register_table(ROLES_TABLE, to_wire, lambda raw: from_wire(ACLRole, raw))
register_table(ONE_TIME_TABLE, to_wire, lambda raw: from_wire(ACLOneTimeToken, raw))
register_table(BOOTSTRAP_TABLE)


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapResult:
    """``token`` as stored, or ``None`` when refused (already bootstrapped at ``reset_index``)."""

    token: ACLToken | None
    reset_index: int


# ---- writes (FSM only) ---------------------------------------------------------------------


def upsert_tokens_locked(txn: Txn, tokens: Iterable[ACLToken]) -> tuple[ACLToken, ...]:
    out = []
    for token in tokens:
        current: ACLToken | None = txn.get(TOKENS_TABLE, token.accessor_id)
        stored = ACLToken(
            accessor_id=token.accessor_id,
            secret_id=current.secret_id if current else token.secret_id,
            name=token.name,
            type=token.type,
            policies=token.policies,
            roles=token.roles,
            global_=current.global_ if current else token.global_,
            create_time=current.create_time if current else token.create_time,
            expiration_time=current.expiration_time if current else token.expiration_time,
            expiration_ttl=current.expiration_ttl if current else token.expiration_ttl,
            create_index=current.create_index if current else txn.index,
            modify_index=txn.index,
        )
        txn.put(TOKENS_TABLE, stored.accessor_id, stored)
        txn.put(SECRETS_TABLE, stored.secret_id, stored.accessor_id)
        out.append(stored)
    return tuple(out)


def delete_tokens_locked(txn: Txn, accessor_ids: Iterable[str]) -> None:
    for accessor in accessor_ids:
        current: ACLToken | None = txn.get(TOKENS_TABLE, accessor)
        if current is not None:
            txn.delete(TOKENS_TABLE, accessor)
            txn.delete(SECRETS_TABLE, current.secret_id)


def bootstrap_locked(txn: Txn, token: ACLToken, reset_index: int) -> BootstrapResult:
    done: int | None = txn.get(BOOTSTRAP_TABLE, "index")
    if done is not None and reset_index != done:
        return BootstrapResult(token=None, reset_index=done)
    (stored,) = upsert_tokens_locked(txn, [token])
    txn.put(BOOTSTRAP_TABLE, "index", txn.index)
    return BootstrapResult(token=stored, reset_index=txn.index)


def upsert_policies_locked(txn: Txn, policies: Iterable[ACLPolicy]) -> None:
    for policy in policies:
        current: ACLPolicy | None = txn.get(POLICIES_TABLE, policy.name)
        txn.put(
            POLICIES_TABLE,
            policy.name,
            ACLPolicy(
                name=policy.name,
                description=policy.description,
                rules=policy.rules,
                create_index=current.create_index if current else txn.index,
                modify_index=txn.index,
            ),
        )


def delete_policies_locked(txn: Txn, names: Iterable[str]) -> None:
    for name in names:
        txn.delete(POLICIES_TABLE, name)


def upsert_roles_locked(txn: Txn, roles: Iterable[ACLRole]) -> tuple[ACLRole, ...]:
    out = []
    for role in roles:
        current: ACLRole | None = txn.get(ROLES_TABLE, role.id)
        stored = ACLRole(
            id=role.id,
            name=role.name,
            description=role.description,
            policies=role.policies,
            create_index=current.create_index if current else txn.index,
            modify_index=txn.index,
        )
        txn.put(ROLES_TABLE, role.id, stored)
        out.append(stored)
    return tuple(out)


def delete_roles_locked(txn: Txn, ids: Iterable[str]) -> None:
    for role_id in ids:
        txn.delete(ROLES_TABLE, role_id)


def upsert_one_time_locked(txn: Txn, token: ACLOneTimeToken) -> ACLOneTimeToken:
    stored = ACLOneTimeToken(
        one_time_secret_id=token.one_time_secret_id,
        accessor_id=token.accessor_id,
        expires_at=token.expires_at,
        create_index=txn.index,
        modify_index=txn.index,
    )
    txn.put(ONE_TIME_TABLE, stored.one_time_secret_id, stored)
    return stored


def exchange_one_time_locked(txn: Txn, secret: str, now: int) -> ACLToken | None:
    """The token the one-time secret names (``None``: unknown or expired); the secret is used up."""
    ott: ACLOneTimeToken | None = txn.get(ONE_TIME_TABLE, secret)
    if ott is None:
        return None
    txn.delete(ONE_TIME_TABLE, secret)
    for key, other in list(txn.table(ONE_TIME_TABLE).items()):  # expired ones go too
        if other.expires_at <= now:
            txn.delete(ONE_TIME_TABLE, key)
    if ott.expires_at <= now:
        return None
    token: ACLToken | None = txn.get(TOKENS_TABLE, ott.accessor_id)
    return token


# ---- reads ---------------------------------------------------------------------------------


def get_token(snap: StateSnapshot, accessor_id: str) -> ACLToken | None:
    token: ACLToken | None = snap.get(TOKENS_TABLE, accessor_id)
    return token


def token_by_secret(snap: StateSnapshot, secret_id: str) -> ACLToken | None:
    accessor = snap.get(SECRETS_TABLE, secret_id)
    return None if accessor is None else get_token(snap, accessor)


def list_tokens(snap: StateSnapshot, prefix: str = "") -> list[ACLToken]:
    return sorted(
        (t for t in snap.table(TOKENS_TABLE).values() if t.accessor_id.startswith(prefix)),
        key=lambda t: t.accessor_id,
    )


def get_policy(snap: StateSnapshot, name: str) -> ACLPolicy | None:
    policy: ACLPolicy | None = snap.get(POLICIES_TABLE, name)
    return policy


def list_policies(snap: StateSnapshot, prefix: str = "") -> list[ACLPolicy]:
    return sorted(
        (p for p in snap.table(POLICIES_TABLE).values() if p.name.startswith(prefix)), key=lambda p: p.name
    )


def get_role(snap: StateSnapshot, role_id: str) -> ACLRole | None:
    role: ACLRole | None = snap.get(ROLES_TABLE, role_id)
    return role


def get_role_by_name(snap: StateSnapshot, name: str) -> ACLRole | None:
    return next((r for r in snap.table(ROLES_TABLE).values() if r.name == name), None)


def list_roles(snap: StateSnapshot, prefix: str = "") -> list[ACLRole]:
    return sorted(
        (r for r in snap.table(ROLES_TABLE).values() if r.id.startswith(prefix)), key=lambda r: r.name
    )


def bootstrap_index(snap: StateSnapshot) -> int:
    """The Raft index of the last bootstrap (0: never bootstrapped)."""
    index: int | None = snap.get(BOOTSTRAP_TABLE, "index")
    return index or 0

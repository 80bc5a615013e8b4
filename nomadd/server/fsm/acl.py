"""FSM cases of the ACL entries (tokens, policies, roles, one-time tokens, bootstrap)."""

from __future__ import annotations

from nomadd.server.state import store_acl
from nomadd.server.state.store import Txn
from nomadd.server.state.store_acl import BootstrapResult
from nomadd.structs.acl import ACLOneTimeToken, ACLRole, ACLToken
from nomadd.structs.requests.acl import (
    ACLBootstrapEntry,
    ACLDeleteEntry,
    ACLOneTimeExchangeEntry,
    ACLOneTimeTokenEntry,
    ACLPoliciesEntry,
    ACLRolesEntry,
    ACLTokensEntry,
)

__all__ = [
    "apply_bootstrap",
    "apply_one_time_exchange",
    "apply_one_time_upsert",
    "apply_policy_delete",
    "apply_policy_upsert",
    "apply_role_delete",
    "apply_role_upsert",
    "apply_token_delete",
    "apply_token_upsert",
]


def apply_bootstrap(txn: Txn, entry: ACLBootstrapEntry) -> BootstrapResult:
    return store_acl.bootstrap_locked(txn, entry.token, entry.reset_index)


def apply_token_upsert(txn: Txn, entry: ACLTokensEntry) -> tuple[ACLToken, ...]:
    return store_acl.upsert_tokens_locked(txn, entry.tokens)


def apply_token_delete(txn: Txn, entry: ACLDeleteEntry) -> None:
    store_acl.delete_tokens_locked(txn, entry.keys)


def apply_policy_upsert(txn: Txn, entry: ACLPoliciesEntry) -> None:
    store_acl.upsert_policies_locked(txn, entry.policies)


def apply_policy_delete(txn: Txn, entry: ACLDeleteEntry) -> None:
    store_acl.delete_policies_locked(txn, entry.keys)


def apply_role_upsert(txn: Txn, entry: ACLRolesEntry) -> tuple[ACLRole, ...]:
    return store_acl.upsert_roles_locked(txn, entry.roles)


def apply_role_delete(txn: Txn, entry: ACLDeleteEntry) -> None:
    store_acl.delete_roles_locked(txn, entry.keys)


def apply_one_time_upsert(txn: Txn, entry: ACLOneTimeTokenEntry) -> ACLOneTimeToken:
    return store_acl.upsert_one_time_locked(txn, entry.token)


def apply_one_time_exchange(txn: Txn, entry: ACLOneTimeExchangeEntry) -> ACLToken | None:
    return store_acl.exchange_one_time_locked(txn, entry.one_time_secret_id, entry.now)

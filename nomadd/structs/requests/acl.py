"""``ACL.*`` RPC requests and replies, and the ACL entries of the Raft log (Nomad's acl_endpoint.go)."""

from __future__ import annotations

from dataclasses import dataclass

from nomadd.structs.acl import ACLOneTimeToken, ACLPolicy, ACLRole, ACLToken
from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "ACL_BOOTSTRAP",
    "ACL_DELETE_POLICIES",
    "ACL_DELETE_ROLES",
    "ACL_DELETE_TOKENS",
    "ACL_EXCHANGE_ONE_TIME_TOKEN",
    "ACL_GET_POLICY",
    "ACL_GET_ROLE",
    "ACL_GET_TOKEN",
    "ACL_LIST_POLICIES",
    "ACL_LIST_ROLES",
    "ACL_LIST_TOKENS",
    "ACL_RESOLVE_TOKEN",
    "ACL_UPSERT_ONE_TIME_TOKEN",
    "ACL_UPSERT_POLICIES",
    "ACL_UPSERT_ROLES",
    "ACL_UPSERT_TOKENS",
    "ACLBootstrapEntry",
    "ACLBootstrapRequest",
    "ACLDeleteEntry",
    "ACLDeleteRequest",
    "ACLGetRequest",
    "ACLListRequest",
    "ACLOneTimeExchangeEntry",
    "ACLOneTimeExchangeRequest",
    "ACLOneTimeTokenEntry",
    "ACLOneTimeTokenReply",
    "ACLPoliciesEntry",
    "ACLPolicyListReply",
    "ACLPolicyReply",
    "ACLResolveReply",
    "ACLRoleListReply",
    "ACLRoleReply",
    "ACLRolesEntry",
    "ACLTokenListReply",
    "ACLTokenReply",
    "ACLTokensEntry",
    "ACLUpsertPoliciesRequest",
    "ACLUpsertRolesRequest",
    "ACLUpsertTokensRequest",
    "ACLWriteReply",
]


# ---- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLBootstrapRequest(Envelope):
    """``bootstrap_secret``: the operator's own secret for the management token (a UUID), or ""."""

    bootstrap_secret: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLUpsertTokensRequest(Envelope):
    """Create (empty ``accessor_id``) or update tokens; ``expiration_ttl`` is in ns."""

    tokens: tuple[ACLToken, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLUpsertPoliciesRequest(Envelope):
    policies: tuple[ACLPolicy, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLUpsertRolesRequest(Envelope):
    roles: tuple[ACLRole, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLDeleteRequest(Envelope):
    """Delete tokens (accessor IDs), policies (names) or roles (IDs), by the method called."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLGetRequest(Envelope):
    """One token (accessor ID; ``"self"``: the caller's own), policy (name) or role (ID, or
    ``by_name``)."""

    key: str
    by_name: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLListRequest(Envelope):
    prefix: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLOneTimeExchangeRequest(Envelope):
    one_time_secret_id: str


# ---- replies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLWriteReply:
    meta: WriteMeta


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLTokenReply:
    """A write's or read's token (``None``: not found); ``tokens`` for a batch upsert."""

    meta: QueryMeta
    token: ACLToken | None = None
    tokens: tuple[ACLToken, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLTokenListReply:
    meta: QueryMeta
    tokens: tuple[ACLToken, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLPolicyReply:
    meta: QueryMeta
    policy: ACLPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLPolicyListReply:
    meta: QueryMeta
    policies: tuple[ACLPolicy, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLRoleReply:
    meta: QueryMeta
    role: ACLRole | None = None
    roles: tuple[ACLRole, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLRoleListReply:
    meta: QueryMeta
    roles: tuple[ACLRole, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLOneTimeTokenReply:
    meta: QueryMeta
    one_time_token: ACLOneTimeToken


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLResolveReply:
    """What an agent needs to compile a secret's ACL: the token (``None``: anonymous), and the
    policies it reaches directly and through its roles. ``acl_enabled`` false: no checks."""

    meta: QueryMeta
    acl_enabled: bool = True
    token: ACLToken | None = None
    policies: tuple[ACLPolicy, ...] = ()


# ---- Raft entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLBootstrapEntry:
    """``ACL_TOKEN_BOOTSTRAP``: applied only if ACLs were never bootstrapped, or ``reset_index`` is
    the index of the last bootstrap (the ``acl-bootstrap-reset`` procedure)."""

    token: ACLToken
    reset_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLTokensEntry:
    tokens: tuple[ACLToken, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLPoliciesEntry:
    policies: tuple[ACLPolicy, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLRolesEntry:
    roles: tuple[ACLRole, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLDeleteEntry:
    """``ACL_*_DELETE``: the keys (accessor IDs, policy names or role IDs) to remove."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLOneTimeTokenEntry:
    token: ACLOneTimeToken


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLOneTimeExchangeEntry:
    """Consume the one-time token; ``now`` (unix ns, made by the endpoint) refuses expired ones."""

    one_time_secret_id: str
    now: int


# ---- methods -------------------------------------------------------------------------------

ACL_BOOTSTRAP = Method("ACL.Bootstrap", ACLBootstrapRequest, ACLTokenReply)
ACL_UPSERT_TOKENS = Method("ACL.UpsertTokens", ACLUpsertTokensRequest, ACLTokenReply)
ACL_DELETE_TOKENS = Method("ACL.DeleteTokens", ACLDeleteRequest, ACLWriteReply)
ACL_GET_TOKEN = Method("ACL.GetToken", ACLGetRequest, ACLTokenReply)
ACL_LIST_TOKENS = Method("ACL.ListTokens", ACLListRequest, ACLTokenListReply)
ACL_RESOLVE_TOKEN = Method("ACL.ResolveToken", ACLGetRequest, ACLResolveReply)
ACL_UPSERT_POLICIES = Method("ACL.UpsertPolicies", ACLUpsertPoliciesRequest, ACLWriteReply)
ACL_DELETE_POLICIES = Method("ACL.DeletePolicies", ACLDeleteRequest, ACLWriteReply)
ACL_GET_POLICY = Method("ACL.GetPolicy", ACLGetRequest, ACLPolicyReply)
ACL_LIST_POLICIES = Method("ACL.ListPolicies", ACLListRequest, ACLPolicyListReply)
ACL_UPSERT_ROLES = Method("ACL.UpsertRoles", ACLUpsertRolesRequest, ACLRoleReply)
ACL_DELETE_ROLES = Method("ACL.DeleteRoles", ACLDeleteRequest, ACLWriteReply)
ACL_GET_ROLE = Method("ACL.GetRole", ACLGetRequest, ACLRoleReply)
ACL_LIST_ROLES = Method("ACL.ListRoles", ACLListRequest, ACLRoleListReply)
ACL_UPSERT_ONE_TIME_TOKEN = Method("ACL.UpsertOneTimeToken", ACLListRequest, ACLOneTimeTokenReply)
ACL_EXCHANGE_ONE_TIME_TOKEN = Method("ACL.ExchangeOneTimeToken", ACLOneTimeExchangeRequest, ACLTokenReply)

"""Nomad's ACL objects: tokens, policies and roles (``nomad/structs`` ACLToken, ACLPolicy, ACLRole).

Written only by the FSM (``server/state/store_acl.py``). Times are unix nanoseconds made by the
endpoint that proposed the write (0: none); the HTTP edge (``agent/http/acl_endpoint.py``) shows
them as Nomad's RFC 3339 strings. A token's ``secret_id`` is its bearer credential and is shown
only to whoever may read the token (management) or owns it (``/v1/acl/token/self``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nomadd.structs.codec import api

__all__ = [
    "ACL_CLIENT_TOKEN",
    "ACL_MANAGEMENT_TOKEN",
    "ANONYMOUS_POLICY",
    "ACLOneTimeToken",
    "ACLPolicy",
    "ACLRole",
    "ACLRoleLink",
    "ACLToken",
]

ACL_CLIENT_TOKEN = "client"
ACL_MANAGEMENT_TOKEN = "management"
ANONYMOUS_POLICY = "anonymous"  # the policy that governs requests without a token


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLRoleLink:
    """A role attached to a token: by ID or by name (Nomad's ``ACLTokenRoleLink``)."""

    id: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLToken:
    accessor_id: str
    secret_id: str
    name: str = ""
    type: str = ACL_CLIENT_TOKEN
    policies: tuple[str, ...] = ()
    roles: tuple[ACLRoleLink, ...] = ()
    global_: bool = field(default=False, metadata=api("Global"))
    create_time: int = 0
    expiration_time: int = 0  # unix ns; 0: never expires
    expiration_ttl: int = 0  # ns, as given at creation
    create_index: int = 0
    modify_index: int = 0

    @property
    def is_management(self) -> bool:
        return self.type == ACL_MANAGEMENT_TOKEN

    def expired(self, now_ns: int) -> bool:
        return self.expiration_time != 0 and self.expiration_time <= now_ns


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLPolicy:
    name: str
    description: str = ""
    rules: str = ""
    create_index: int = 0
    modify_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLRole:
    id: str
    name: str
    description: str = ""
    policies: tuple[str, ...] = ()
    create_index: int = 0
    modify_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ACLOneTimeToken:
    """A single-use secret that is exchanged once for the token it names."""

    one_time_secret_id: str
    accessor_id: str
    expires_at: int = 0  # unix ns
    create_index: int = 0
    modify_index: int = 0

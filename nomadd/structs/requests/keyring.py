"""``Keyring.*`` RPCs (Nomad's root keyring, ``/v1/operator/keyring/*``) and their Raft entry.

A root key is a random AES-256-GCM key that seals variable items. It is replicated through Raft
*wrapped*: encrypted with a key-encryption key derived from the cluster secret that only servers
hold (``server/keyring.py``), so Raft entries, journals and snapshots never hold it in the clear.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from nomadd.structs.requests import Envelope, Method, QueryMeta, WriteMeta

__all__ = [
    "GOSSIP_KEYRING_LOCAL",
    "KEYRING_LIST",
    "KEYRING_ROTATE",
    "GossipKeyringOp",
    "GossipKeyringReply",
    "GossipKeyringRequest",
    "KeyringListReply",
    "KeyringListRequest",
    "KeyringRotateReply",
    "KeyringRotateRequest",
    "RootKey",
    "RootKeyMeta",
    "RootKeyState",
    "RootKeyUpsertEntry",
]

ALGORITHM = "aes256-gcm"


class RootKeyState(enum.StrEnum):
    ACTIVE = "active"  # seals new writes (exactly one once any key exists)
    INACTIVE = "inactive"  # kept to read what it sealed


@dataclass(frozen=True, slots=True, kw_only=True)
class RootKeyMeta:
    """A root key without its material (what ``keyring list`` shows)."""

    key_id: str
    state: RootKeyState
    create_time: int  # unix nanoseconds, made by the endpoint
    algorithm: str = ALGORITHM


@dataclass(frozen=True, slots=True, kw_only=True)
class RootKey(RootKeyMeta):
    """A root key as Raft and the state store hold it: ``wrapped`` is ``nonce || AES-GCM(key)``
    under the servers' key-encryption key."""

    wrapped: bytes = b""

    def meta(self) -> RootKeyMeta:
        return RootKeyMeta(
            key_id=self.key_id, state=self.state, create_time=self.create_time, algorithm=self.algorithm
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RootKeyUpsertEntry:
    """``ROOT_KEY_UPSERT``: store ``key``; an active key makes every other key inactive."""

    key: RootKey


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyringListRequest(Envelope):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyringListReply:
    meta: QueryMeta
    keys: tuple[RootKeyMeta, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyringRotateRequest(Envelope):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyringRotateReply:
    meta: WriteMeta
    key: RootKeyMeta


class GossipKeyringOp(enum.StrEnum):
    LIST = "list"
    INSTALL = "install"
    USE = "use"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipKeyringRequest(Envelope):
    """One gossip keyring operation on the receiving server only (servers fan it out)."""

    op: GossipKeyringOp
    key: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipKeyringReply:
    """The server's keys after the operation, primary first; ``error`` when it was refused."""

    name: str
    keys: tuple[bytes, ...] = ()
    error: str = ""


GOSSIP_KEYRING_LOCAL = Method("GossipKeyring.Local", GossipKeyringRequest, GossipKeyringReply)
KEYRING_LIST = Method("Keyring.List", KeyringListRequest, KeyringListReply)
KEYRING_ROTATE = Method("Keyring.Rotate", KeyringRotateRequest, KeyringRotateReply)

"""The servers' root keyring (Nomad's keyring): AES-256-GCM keys that seal variable items.

* A **root key** is 32 random bytes made by the leader. It is replicated through Raft
  (``ROOT_KEY_UPSERT``) *wrapped* with the key-encryption key (KEK), derived (HKDF) from the
  cluster secret ``server.raft_secret`` that every server holds and no client does. So Raft
  entries, the journal and snapshots hold only wrapped keys and sealed items; a server restarted
  with the same secret unwraps them again. Changing the cluster secret makes existing keys
  unreadable (docs/security.md §Secrets at rest).
* Exactly one key is **active** and seals new writes; ``Keyring.Rotate`` makes a new active key,
  older ones stay (inactive) to open what they sealed. The first variable write makes the first key.
* Items are sealed as ``nonce(12) || AES-GCM(msgpack(items))`` with ``namespace\\0path`` as
  associated data, so sealed items cannot be moved to another variable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping

import msgpack  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nomadd.rpc import RPCRegistry
from nomadd.rpc.auth import derive_key
from nomadd.server.context import ServerContext
from nomadd.server.state import store_keyring
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.errors import RPCError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.keyring import (
    KEYRING_LIST,
    KEYRING_ROTATE,
    KeyringListReply,
    KeyringListRequest,
    KeyringRotateReply,
    KeyringRotateRequest,
    RootKey,
    RootKeyMeta,
    RootKeyState,
    RootKeyUpsertEntry,
)
from nomadd.structs.variables import Variable, VariableEncrypted

logger = logging.getLogger(__name__)

__all__ = ["Keyring", "KeyringEndpoint"]

_NONCE = 12
_TABLES = (store_keyring.TABLE,)


class KeyringError(RPCError):
    """A sealed value cannot be opened here (unknown key, other cluster secret, tampering)."""


def _aad(namespace: str, path: str) -> bytes:
    return b"nomadd variable\x00" + namespace.encode() + b"\x00" + path.encode()


class Keyring:
    """Seals and opens variable items with the root keys in the state store."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._kek = AESGCM(derive_key(ctx.config.raft_secret, b"nomadd keyring kek v1"))
        self._keys: dict[str, AESGCM] = {}
        self._lock = asyncio.Lock()

    def _unwrap(self, key: RootKey) -> AESGCM:
        aead = self._keys.get(key.key_id)
        if aead is None:
            try:
                raw = self._kek.decrypt(key.wrapped[:_NONCE], key.wrapped[_NONCE:], key.key_id.encode())
            except InvalidTag as err:
                raise KeyringError(
                    f"root key {key.key_id} cannot be unwrapped (another cluster secret?)"
                ) from err
            aead = self._keys[key.key_id] = AESGCM(raw)
        return aead

    def _key(self, snap: StateSnapshot, key_id: str) -> AESGCM:
        key = store_keyring.get(snap, key_id)
        if key is None:
            raise KeyringError(f"root key {key_id} not found in the keyring")
        return self._unwrap(key)

    async def new_key(self) -> tuple[RootKey, int]:
        """Make a root key, active, and commit it (leader only: callers are write RPCs)."""
        key_id = str(uuid.uuid4())
        nonce = os.urandom(_NONCE)
        wrapped = nonce + self._kek.encrypt(nonce, AESGCM.generate_key(bit_length=256), key_id.encode())
        key = RootKey(key_id=key_id, state=RootKeyState.ACTIVE, create_time=time.time_ns(), wrapped=wrapped)
        _, index = await self._ctx.propose(MessageType.ROOT_KEY_UPSERT, RootKeyUpsertEntry(key=key))
        logger.info("root key created key_id=%s", key_id)
        return key, index

    async def _active(self) -> tuple[str, AESGCM]:
        key = store_keyring.active(self._ctx.store.snapshot())
        if key is None:
            async with self._lock:
                key = store_keyring.active(self._ctx.store.snapshot())
                if key is None:
                    key, _ = await self.new_key()
        return key.key_id, self._unwrap(key)

    async def seal(self, namespace: str, path: str, items: Mapping[str, str]) -> tuple[str, bytes]:
        """``(key_id, sealed items)`` under the active root key (made if there is none)."""
        key_id, aead = await self._active()
        nonce = os.urandom(_NONCE)
        plain: bytes = msgpack.packb(sorted(items.items()), use_bin_type=True)
        return key_id, nonce + aead.encrypt(nonce, plain, _aad(namespace, path))

    def open(self, snap: StateSnapshot, var: VariableEncrypted) -> Variable:
        aead = self._key(snap, var.key_id)
        try:
            plain = aead.decrypt(var.data[:_NONCE], var.data[_NONCE:], _aad(var.namespace, var.path))
        except InvalidTag as err:
            raise KeyringError(f"variable {var.path!r} cannot be decrypted with key {var.key_id}") from err
        items = {str(k): str(v) for k, v in msgpack.unpackb(plain, raw=False)}
        meta = var.metadata()
        return Variable(
            namespace=meta.namespace,
            path=meta.path,
            create_index=meta.create_index,
            modify_index=meta.modify_index,
            create_time=meta.create_time,
            modify_time=meta.modify_time,
            items=items,
        )


class KeyringEndpoint:
    """``Keyring.List`` (read) and ``Keyring.Rotate`` (write)."""

    def __init__(self, ctx: ServerContext, keyring: Keyring) -> None:
        self._ctx = ctx
        self._keyring = keyring

    def register(self, registry: RPCRegistry) -> None:
        registry.register(KEYRING_LIST, self.list_keys, kind="read")
        registry.register(KEYRING_ROTATE, self.rotate, kind="write")

    async def list_keys(self, req: KeyringListRequest) -> KeyringListReply:
        def fn(snap: StateSnapshot) -> tuple[RootKeyMeta, ...]:
            return tuple(k.meta() for k in store_keyring.list_keys(snap))

        keys, meta = await self._ctx.blocking.query(req, _TABLES, fn)
        return KeyringListReply(meta=meta, keys=keys)

    async def rotate(self, req: KeyringRotateRequest) -> KeyringRotateReply:
        key, index = await self._keyring.new_key()
        return KeyringRotateReply(meta=WriteMeta(index=index), key=key.meta())

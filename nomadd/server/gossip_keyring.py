"""The gossip encryption keyring of the servers (Nomad's ``operator gossip keyring``, Serf's
key manager): list, install, use (make primary) and remove keys on every server at once.

The keys live in ``<data_dir>/server/serf.keyring`` (JSON list of base64 keys, primary first,
mode 0600), written at the first start from ``server.encrypt`` and after every change; once it
exists it wins over ``server.encrypt`` (as Serf's keyring file does). An operation runs on the
server that got the request and on every other alive server of the gossip pool — of every
federated region, as they share the pool and its key — through the ``GossipKeyring.Local`` RPC,
which only servers may call (``nomadd.rpc.auth``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from nomadd.gossip import Gossip, MemberStatus
from nomadd.gossip.crypto import KeyringOpError
from nomadd.rpc import RPCClient, RPCRegistry
from nomadd.rpc.auth import server_caller
from nomadd.server.membership import ServerInfo
from nomadd.structs.errors import ConfigError, RPCError, ValidationError
from nomadd.structs.requests.keyring import (
    GOSSIP_KEYRING_LOCAL,
    GossipKeyringOp,
    GossipKeyringReply,
    GossipKeyringRequest,
)

logger = logging.getLogger(__name__)

__all__ = ["KEYRING_FILE", "GossipKeyring", "decode_key"]

KEYRING_FILE = "serf.keyring"
PEER_TIMEOUT_S = 5.0


def decode_key(text: str) -> bytes:
    """A key as the CLI and API give it (base64 of 16, 24 or 32 bytes); 400 otherwise."""
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("key is not valid base64") from None
    if len(key) not in (16, 24, 32):
        raise ValidationError(f"key must be 16, 24 or 32 bytes once decoded, got {len(key)}")
    return key


class GossipKeyring:
    def __init__(
        self,
        *,
        name: Callable[[], str],
        data_dir: Path | None,
        servers: Callable[[], list[ServerInfo]],
        http_addr: str,
        rpc: RPCClient,
    ) -> None:
        self._name = name
        self._path = data_dir / KEYRING_FILE if data_dir is not None else None
        self._servers = servers
        self._http_addr = http_addr
        self._rpc = rpc
        self._gossip: Gossip | None = None
        self._lock = asyncio.Lock()

    def register(self, registry: RPCRegistry) -> None:
        registry.register(GOSSIP_KEYRING_LOCAL, self.local, kind="local")

    def load(self) -> list[bytes]:
        """The keys of the keyring file (``[]`` when there is none); ConfigError when unreadable."""
        if self._path is None or not self._path.exists():
            return []
        try:
            raw = json.loads(self._path.read_text())
            if not isinstance(raw, list) or not raw or not all(isinstance(k, str) for k in raw):
                raise ValueError("not a non-empty list of base64 keys")
            return [decode_key(k) for k in raw]
        except (OSError, ValueError, ValidationError) as err:
            raise ConfigError(f"gossip keyring file {self._path}: {err}") from None

    def _save(self, keys: list[bytes]) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump([base64.b64encode(k).decode() for k in keys], f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._path)

    def attach(self, gossip: Gossip, stored: list[bytes]) -> None:
        """Give ``gossip`` the stored keys (its primary was the first), then keep the file current."""
        self._gossip = gossip
        ring = gossip.keyring
        for key in stored[1:]:
            ring.install(key)
        if ring.encrypted:
            self._save(ring.keys())

    async def local(self, req: GossipKeyringRequest) -> GossipKeyringReply:
        """Apply one operation to this server's keyring only."""
        name = self._name()
        if self._gossip is None:
            return GossipKeyringReply(name=name, error="gossip is not running")
        ring = self._gossip.keyring
        async with self._lock:
            try:
                if req.op == GossipKeyringOp.INSTALL:
                    ring.install(req.key)
                elif req.op == GossipKeyringOp.USE:
                    ring.use(req.key)
                elif req.op == GossipKeyringOp.REMOVE:
                    ring.remove(req.key)
            except KeyringOpError as err:
                return GossipKeyringReply(name=name, keys=tuple(ring.keys()), error=str(err))
            if req.op != GossipKeyringOp.LIST:
                await asyncio.to_thread(self._save, ring.keys())
                logger.info("gossip keyring changed op=%s keys=%d", req.op, len(ring.keys()))
        return GossipKeyringReply(name=name, keys=tuple(ring.keys()))

    async def operate(self, op: GossipKeyringOp, key: bytes = b"") -> dict[str, object]:
        """Run ``op`` here and on every other alive server; Nomad's ``KeyringResponse``."""
        req = GossipKeyringRequest(op=op, key=key, caller=server_caller())
        peers = [
            s
            for s in self._servers()
            if s.status == MemberStatus.ALIVE and s.http_addr and s.http_addr != self._http_addr
        ]

        async def one(s: ServerInfo) -> GossipKeyringReply:
            try:
                return await self._rpc.call(
                    s.http_addr, GOSSIP_KEYRING_LOCAL, req, timeout=PEER_TIMEOUT_S, region=s.region
                )
            except RPCError as err:
                return GossipKeyringReply(name=s.http_addr, error=err.message)

        replies = [await self.local(req), *await asyncio.gather(*(one(s) for s in peers))]
        counts: dict[str, int] = {}
        for r in replies:
            for k in r.keys:
                b64 = base64.b64encode(k).decode()
                counts[b64] = counts.get(b64, 0) + 1
        messages = {r.name: r.error for r in replies if r.error}
        if messages and op != GossipKeyringOp.LIST:
            detail = "; ".join(f"{n}: {e}" for n, e in sorted(messages.items()))
            raise ValidationError(f"{len(messages)}/{len(replies)} servers reported an error: {detail}")
        return {"Messages": messages, "Keys": counts, "NumNodes": len(replies)}

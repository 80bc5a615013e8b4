"""``/v1/operator/raft/*``, ``/v1/operator/snapshot``, ``/v1/operator/autopilot/*`` (Nomad's api/)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from nomadd.api.client import APIError, Client

__all__ = ["Operator", "SnapshotDownload"]


class SnapshotDownload:
    """A snapshot archive read piece by piece as it arrives, with its sha256 as received; a
    connection that fails midway is an APIError (status 0)."""

    def __init__(self, resp: Any, address: str) -> None:
        self._resp = resp
        self._address = address
        self.sha256 = hashlib.sha256()
        self.size = 0
        digest = str(resp.headers.get("Digest", ""))
        self.digest = digest.partition("sha-256=")[2] if digest.startswith("sha-256=") else ""

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self._resp.read(size)
        except (OSError, http.client.HTTPException) as err:
            raise APIError(0, f"Error reading the snapshot from {self._address}: {err!r}") from None
        self.sha256.update(data)
        self.size += len(data)
        return data

    def verified(self) -> bool:
        """Whether what was read matches the ``Digest`` the agent sent (True without one)."""
        return not self.digest or base64.b64encode(self.sha256.digest()).decode() == self.digest


class Operator:
    def __init__(self, client: Client) -> None:
        self._c = client

    def raft_configuration(self, stale: bool = False) -> dict[str, Any]:
        """``{Index, Servers: [{ID, Node, Address, Leader, Voter, RaftProtocol}]}``."""
        value, _ = self._c.get("/v1/operator/raft/configuration", {"stale": True} if stale else {})
        return cast(dict[str, Any], value or {})

    def raft_remove_peer_by_id(self, peer_id: str) -> None:
        self._c.delete("/v1/operator/raft/peer", {"id": peer_id})

    def raft_remove_peer_by_address(self, address: str) -> None:
        self._c.delete("/v1/operator/raft/peer", {"address": address})

    # ---- snapshots (/v1/operator/snapshot) -------------------------------------------------
    def snapshot_save(self, stale: bool = False) -> tuple[bytes, int]:
        """The archive bytes and the Raft index they hold (``X-Nomad-Index``)."""
        raw, headers = self._c.raw("GET", "/v1/operator/snapshot", {"stale": True} if stale else {}, None)
        return raw, int(headers.get("X-Nomad-Index", "0") or 0)

    @contextlib.contextmanager
    def snapshot_save_stream(self, stale: bool = False) -> Iterator[tuple[SnapshotDownload, int]]:
        """The archive as it arrives (read it inside the ``with``) and the Raft index it holds."""
        with self._c.stream("/v1/operator/snapshot", {"stale": True} if stale else {}) as (resp, headers):
            yield SnapshotDownload(resp, self._c.address), int(headers.get("X-Nomad-Index", "0") or 0)

    def snapshot_restore(self, archive: bytes | BinaryIO, size: int | None = None) -> None:
        """Upload ``archive``: bytes, or a file of ``size`` bytes sent as it is read."""
        headers = {"Content-Length": str(size)} if size is not None else None
        self._c.raw("PUT", "/v1/operator/snapshot", None, archive, headers=headers)

    # ---- autopilot (/v1/operator/autopilot/*) ----------------------------------------------
    def autopilot_configuration(self) -> dict[str, Any]:
        value, _ = self._c.get("/v1/operator/autopilot/configuration")
        return cast(dict[str, Any], value or {})

    def autopilot_set_configuration(self, conf: dict[str, Any], cas_index: int | None = None) -> bool:
        params = {"cas": cas_index} if cas_index is not None else {}
        value, _ = self._c.put("/v1/operator/autopilot/configuration", conf, params)
        return bool(value)

    def autopilot_health(self) -> dict[str, Any]:
        """The health report; the agent answers 429 (same body) when the cluster is unhealthy."""
        try:
            value, _ = self._c.get("/v1/operator/autopilot/health")
        except APIError as err:
            if err.status != 429:
                raise
            value = json.loads(err.message)
        return cast(dict[str, Any], value or {})

    def raft_transfer_leadership(self, address: str = "", peer_id: str = "") -> dict[str, Any]:
        params = {"address": address} if address else ({"id": peer_id} if peer_id else {})
        value, _ = self._c.put("/v1/operator/raft/transfer-leadership", None, params)
        return cast(dict[str, Any], value or {})

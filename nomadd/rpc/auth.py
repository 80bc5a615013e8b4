"""Who is calling the internal RPC: a server, a client node, or nobody (refused).

Every ``POST /v1/internal/<Method>`` must carry one credential (docs/security.md §Agent RPC):

* **server** — ``X-Nomadd-Server-Auth: v1:<unix ms>:<nonce>:<hmac>``, an HMAC-SHA256 over
  (method, timestamp, nonce, body) with a key derived (HKDF) from the cluster secret
  (``server.raft_secret``) that only servers hold. Accepted within :data:`REPLAY_WINDOW_S` of
  the receiver's clock, each nonce once. A server vouches for the whole body, so the
  :class:`~nomadd.structs.requests.Caller` inside a server-signed request (the identity a
  forwarding server verified) is kept; in any other request it is overwritten.
* **node** — ``X-Nomadd-Node-ID`` + ``X-Nomadd-Node-Secret``: the node's SecretID, checked
  against the registered node (a node not registered yet may only call ``Node.Register`` for
  itself, with the same ID and secret in the body: that is how a node joins).

Which caller may call which method is :data:`METHOD_ACCESS` (one table; a method missing from it
is server-only): ``node`` methods act on the calling node's own objects, ``server`` methods
are for servers only, ``api`` methods are the ones API users reach through an agent (the ACL
token in the envelope decides, exactly as on their HTTP route).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nomadd.structs.errors import PermissionDeniedError
from nomadd.structs.requests import Caller, CallerKind

__all__ = [
    "METHOD_ACCESS",
    "NODE_ID_HEADER",
    "NODE_SECRET_HEADER",
    "REPLAY_WINDOW_S",
    "SERVER_AUTH_HEADER",
    "Access",
    "Credentials",
    "NodeCredentials",
    "ServerSigner",
    "access_of",
    "derive_key",
    "server_caller",
    "unauthenticated",
]

SERVER_AUTH_HEADER = "X-Nomadd-Server-Auth"
NODE_ID_HEADER = "X-Nomadd-Node-ID"
NODE_SECRET_HEADER = "X-Nomadd-Node-Secret"
REPLAY_WINDOW_S = 60.0  # clock skew tolerated between servers; a nonce is remembered this long
_MAX_NONCES = 100_000  # bound on the replay cache (a flood cannot grow it without limit)

Access = Literal["node", "server", "api"]

# Every internal method and who may call it. ``node``: only the node the request is about (or a
# server forwarding for it); ``server``: servers only; ``api``: any authenticated agent relaying
# an API user's request (a client-only agent's HTTP API), the envelope's token decides.
METHOD_ACCESS: Mapping[str, Access] = {
    "Node.Register": "node",
    "Node.UpdateStatus": "node",
    "Node.GetClientAllocs": "node",
    "Node.UpdateAlloc": "node",
    "ServiceRegistration.Upsert": "node",  # a client's registrations for its own allocation
    "ServiceRegistration.DeleteByID": "api",
    "ServiceRegistration.List": "api",
    "ServiceRegistration.GetService": "api",
    "Alloc.GetServiceRegistrations": "api",
    "Node.Deregister": "api",
    "Node.UpdateEligibility": "api",
    "Node.UpdateDrain": "api",
    "Node.GetNode": "api",
    "Node.List": "api",
    "Node.HeartbeatStats": "api",
    "Job.Register": "api",
    "Job.Deregister": "api",
    "Job.GetJob": "api",
    "Job.GetJobVersions": "api",
    "Job.List": "api",
    "Job.Allocations": "api",
    "Job.Evaluations": "api",
    "Job.Summary": "api",
    "Job.Dispatch": "api",
    "Periodic.Force": "api",
    "Job.Plan": "api",
    "Job.GetJobVersionDiffs": "api",
    "Job.Revert": "api",
    "Job.Scale": "api",
    "Job.ScaleStatus": "api",
    "Job.Evaluate": "api",
    "Job.Stable": "api",
    "Scaling.ListPolicies": "api",
    "Scaling.GetPolicy": "api",
    "Alloc.GetAlloc": "api",
    "Alloc.GetAllocs": "api",
    "Alloc.List": "api",
    "Alloc.Stop": "api",
    "Eval.GetEval": "api",
    "Eval.List": "api",
    "Eval.Allocations": "api",
    "Deployment.GetDeployment": "api",
    "Deployment.List": "api",
    "Deployment.Allocations": "api",
    "Deployment.Fail": "api",
    "Deployment.Pause": "api",
    "Deployment.Promote": "api",
    "Deployment.SetAllocHealth": "api",
    "Deployment.Unblock": "api",
    "Variables.Apply": "api",
    "Variables.Read": "api",
    "Variables.List": "api",
    "Namespace.UpsertNamespaces": "api",
    "Namespace.DeleteNamespaces": "api",
    "Namespace.GetNamespace": "api",
    "Namespace.ListNamespaces": "api",
    "NodePool.UpsertNodePools": "api",
    "NodePool.DeleteNodePools": "api",
    "NodePool.GetNodePool": "api",
    "NodePool.List": "api",
    "NodePool.ListNodes": "api",
    "NodePool.ListJobs": "api",
    "Search.PrefixSearch": "api",
    "Search.FuzzySearch": "api",
    "Job.Validate": "api",
    "Keyring.List": "api",
    "Keyring.Rotate": "api",
    "GossipKeyring.Local": "server",  # one server's part of a keyring change; servers fan it out
    "Status.Peers": "api",
    "Status.Leader": "api",
    "Status.Members": "api",
    "Status.Ping": "api",
    "Status.Regions": "api",
    "Operator.RaftGetConfiguration": "api",
    "Operator.RaftRemovePeerByAddress": "api",
    "Operator.RaftRemovePeerByID": "api",
    "System.GarbageCollect": "api",
    "Operator.SnapshotSave": "api",
    "Operator.SnapshotRestoreChunk": "api",
    "Operator.AutopilotGetConfiguration": "api",
    "Operator.AutopilotSetConfiguration": "api",
    "Operator.ServerHealth": "api",
    "Operator.TransferLeadershipToPeer": "api",
    "Status.AutopilotServerStats": "server",  # the leader's autopilot asks each server
    # a follower's scheduling workers and the leader's broker and plan applier (Nomad: server
    # certificate / server identity only); every call about an eval also needs its delivery token
    "Eval.Dequeue": "server",
    "Eval.Ack": "server",
    "Eval.Nack": "server",
    "Plan.Submit": "server",
    # the acl branch's methods: API calls (a client-only agent relays them and resolves tokens)
    "ACL.Bootstrap": "api",
    "ACL.UpsertTokens": "api",
    "ACL.DeleteTokens": "api",
    "ACL.GetToken": "api",
    "ACL.ListTokens": "api",
    "ACL.ResolveToken": "api",
    "ACL.UpsertPolicies": "api",
    "ACL.DeletePolicies": "api",
    "ACL.GetPolicy": "api",
    "ACL.ListPolicies": "api",
    "ACL.UpsertRoles": "api",
    "ACL.DeleteRoles": "api",
    "ACL.GetRole": "api",
    "ACL.ListRoles": "api",
    "ACL.UpsertOneTimeToken": "api",
    "ACL.ExchangeOneTimeToken": "api",
}


def access_of(method: str) -> Access:
    """Who may call ``method``; a method not in :data:`METHOD_ACCESS` is for servers only."""
    return METHOD_ACCESS.get(method, "server")


def unauthenticated(method: str) -> PermissionDeniedError:
    return PermissionDeniedError(f"rpc {method}: authentication required", code=401)


def derive_key(secret: str, purpose: bytes) -> bytes:
    """A 32-byte key for ``purpose`` derived from the cluster secret (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"nomadd cluster secret", info=purpose)
    return hkdf.derive(secret.encode())


Credentials = Callable[[str, bytes], dict[str, str]]  # (method, body) -> headers to send


class NodeCredentials:
    """A client node's credential: its ID and SecretID (read when each call is made)."""

    def __init__(self, identity: Callable[[], tuple[str, str]]) -> None:
        self._identity = identity

    def __call__(self, method: str, body: bytes) -> dict[str, str]:
        node_id, secret = self._identity()
        if not node_id:
            return {}
        return {NODE_ID_HEADER: node_id, NODE_SECRET_HEADER: secret}


class ServerSigner:
    """Signs this server's calls and checks other servers' signatures (shared cluster key)."""

    def __init__(self, cluster_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._key = derive_key(cluster_secret, b"nomadd rpc hmac v1")
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def _mac(self, method: str, ts_ms: str, nonce: str, body: bytes) -> str:
        msg = b"\x00".join((method.encode(), ts_ms.encode(), nonce.encode(), hashlib.sha256(body).digest()))
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def __call__(self, method: str, body: bytes) -> dict[str, str]:
        ts_ms = str(int(self._clock() * 1000))
        nonce = os.urandom(12).hex()
        return {SERVER_AUTH_HEADER: f"v1:{ts_ms}:{nonce}:{self._mac(method, ts_ms, nonce, body)}"}

    def verify(self, method: str, body: bytes, value: str) -> None:
        """Raise :class:`PermissionDeniedError` (403) unless ``value`` is a fresh, valid signature."""
        version, ts_ms, nonce, mac = [*value.split(":"), "", "", "", ""][:4]
        if version != "v1" or not ts_ms.isdigit() or not nonce or not mac:
            raise PermissionDeniedError(f"rpc {method}: malformed server credential")
        if not hmac.compare_digest(mac, self._mac(method, ts_ms, nonce, body)):
            raise PermissionDeniedError(f"rpc {method}: invalid server credential")
        now = self._clock()
        if abs(now - int(ts_ms) / 1000) > REPLAY_WINDOW_S:
            raise PermissionDeniedError(f"rpc {method}: server credential outside the replay window")
        while self._seen and (len(self._seen) >= _MAX_NONCES or next(iter(self._seen.values())) < now):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            raise PermissionDeniedError(f"rpc {method}: server credential replayed")
        self._seen[nonce] = now + 2 * REPLAY_WINDOW_S


def server_caller() -> Caller:
    """The caller of a server's own requests (its signature vouches for it on the wire)."""
    return Caller(kind=CallerKind.SERVER)

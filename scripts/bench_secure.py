"""The clusters scripts/bench_heartbeat.py and scripts/bench_schedule.py measure: security off
(plain http, no ACLs, as ``agent -dev`` runs) or on (docs/security.md: mutual TLS on http and
rpc with ``verify_server_hostname`` + ``verify_https_client``, certificates made by the
product's own ``nomadd tls ca/cert create``; ``[acl] enabled`` and bootstrapped), and how the
load generator reaches them: an SSL context presenting a ``client.<region>.nomad`` certificate,
the management token as ``X-Nomad-Token``, and a simulated node's ID + SecretID (or the cluster
secret's signature) on every internal RPC (nomadd/rpc/auth.py).
"""

from __future__ import annotations

import copy
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from nomadd.rpc.auth import NodeCredentials, ServerSigner  # noqa: E402
from tests.integration.cluster import Agent, Cluster, HTTPError  # noqa: E402

ACL_ON: Mapping[str, Any] = {"acl": {"enabled": True}}


def new_cluster(tmp: Path, secure: bool) -> Cluster:
    """A cluster whose agents run with mutual TLS when ``secure`` (pass its configs through
    :func:`server_extra`)."""
    return Cluster(tmp, tls=secure)


def server_extra(extra: Mapping[str, Any], secure: bool) -> dict[str, Any]:
    """``extra`` plus ``[acl] enabled = true`` when ``secure``."""
    out = copy.deepcopy(dict(extra))
    if secure:
        out.update(copy.deepcopy(dict(ACL_ON)))
    return out


def node_headers(node_id: str, secret: str) -> dict[str, str]:
    """The credential a client node presents on the internal RPC."""
    return NodeCredentials(lambda: (node_id, secret))("", b"")


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """How the load generator talks to one cluster."""

    ssl: ssl.SSLContext | None
    token: str  # the management token's SecretID; "" with ACLs off
    raft_secret: str

    @property
    def secure(self) -> bool:
        return self.ssl is not None

    def headers(self) -> dict[str, str]:
        """Session-wide headers: the ACL token (the internal RPC adds its own credential)."""
        return {"X-Nomad-Token": self.token} if self.token else {}

    def connector(self, limit: int = 100) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(limit=limit, ssl=self.ssl if self.ssl is not None else True)

    def server_headers(self, method: str, body: bytes) -> dict[str, str]:
        """A server's signature over ``body`` (for ``api`` methods such as Node.HeartbeatStats)."""
        return ServerSigner(self.raft_secret)(method, body)


def _client_context(cluster: Cluster) -> ssl.SSLContext:
    """Trusts the cluster's CA and presents a ``client.<region>.nomad`` certificate, as a client
    agent does; names are not checked (agents listen on 127.0.0.x)."""
    assert cluster.tls is not None
    dest = cluster.tmp / "bench-client-tls"
    if dest.exists():
        cert = dest / f"{cluster.tls.region}-client-nomad.pem"
        key = dest / f"{cluster.tls.region}-client-nomad-key.pem"
    else:
        cert, key = cluster.tls.issue("client", dest)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(cluster.tls.ca))
    ctx.load_cert_chain(str(cert), str(key))
    ctx.check_hostname = False
    return ctx


def access(cluster: Cluster, leader: Agent, secure: bool, timeout: float = 60.0) -> Access:
    """The load generator's access to a running cluster; bootstraps ACLs when ``secure``."""
    if not secure:
        return Access(ssl=None, token="", raft_secret=cluster.raft_secret)
    deadline = time.monotonic() + timeout
    while True:  # the bootstrap is a Raft write: retried while the leader settles
        try:
            token = str(leader.api("PUT", "/v1/acl/bootstrap")["SecretID"])
            break
        except (HTTPError, OSError) as err:
            if time.monotonic() > deadline:
                raise RuntimeError(f"acl bootstrap failed: {err}") from None
            time.sleep(0.5)
    return Access(ssl=_client_context(cluster), token=token, raft_secret=cluster.raft_secret)


def modes(opts: Any) -> list[bool]:
    """The security settings one run measures: ``--secure`` both, ``--secure-only`` on only."""
    if opts.secure_only:
        return [True]
    return [False, True] if opts.secure else [False]


def add_mode_args(ap: Any) -> None:
    ap.add_argument(
        "--secure",
        action="store_true",
        help="measure with ACLs + mutual TLS off, then on (fresh clusters), and print the ratio",
    )
    ap.add_argument("--secure-only", action="store_true", help="measure with ACLs + mutual TLS on only")


def ratio_line(what: str, off: float, on: float, goal: float | None = 0.8) -> str:
    """``what`` off and on, and their ratio against ``goal`` (``None``: a figure shown beside)."""
    ratio = on / off if off else 0.0
    line = f"{what}: security off {off:,.1f}, on {on:,.1f}, ratio on/off {ratio:.2f}"
    if goal is None:
        return line
    verdict = "ok" if ratio >= goal else "BELOW GOAL"
    return f"{line} (goal >= {goal}) {verdict}"

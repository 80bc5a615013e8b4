"""Typed requests and replies of the internal RPC, and the Raft entries they turn into.

Every RPC request is a frozen dataclass that inherits :class:`Envelope` (Nomad's
``QueryOptions`` and ``WriteRequest`` in one: region, namespace, token, blocking-query options,
forwarded), so forwarding, stale reads and, later, ACL checks read the same fields in one place.
Every reply carries a :class:`QueryMeta` (reads) or :class:`WriteMeta` (writes).

A :class:`Method` names one RPC with its request and reply types, so a caller cannot send the
wrong shape: ``await server.rpc(JOB_REGISTER, JobRegisterRequest(job=job))`` returns a
:class:`~nomadd.structs.requests.job.JobRegisterReply`.

On the wire (internal RPC and Raft) requests, replies and entries travel in the codec's wire form
(msgpack, snake_case); HTTP JSON exists only in ``agent/http``. Each noun has its module here:
``job``, ``node``, ``alloc``, ``eval``, ``variables``, ``operator``, ``status``, ``system``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "DEFAULT_NAMESPACE",
    "Caller",
    "CallerKind",
    "Envelope",
    "Method",
    "MethodKind",
    "QueryMeta",
    "WriteMeta",
    "envelope_of",
]

DEFAULT_NAMESPACE = "default"

MethodKind = str  # "local" | "read" | "write" (see nomadd.rpc.registry)


class CallerKind(enum.StrEnum):
    API = "api"  # an API user (HTTP on this agent, or relayed by an agent); the token decides
    NODE = "node"  # a client node that proved its SecretID
    SERVER = "server"  # a server that proved it holds the cluster secret


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who made a request, as the receiving server verified it (``nomadd.rpc.auth``).

    Set only by the server's internal RPC endpoint after checking the transport credential; a
    value arriving in a request body is overwritten unless a server signed that body (a
    forwarding server passes on the identity it verified). In-process calls default to ``API``.
    """

    kind: CallerKind = CallerKind.API
    node_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """What every RPC request carries (Nomad's ``QueryOptions`` + ``WriteRequest``).

    ``min_query_index``/``max_query_time_s`` make a read blocking; ``allow_stale`` lets a
    follower answer it; ``forwarded`` is set by the server that forwards a request to the
    leader (a forwarded request is never forwarded again). ``auth_token`` is the caller's ACL
    secret (never logged). ``caller`` is who sent it, as verified (see :class:`Caller`).
    """

    region: str = ""
    namespace: str = DEFAULT_NAMESPACE
    auth_token: str = ""
    min_query_index: int = 0
    max_query_time_s: float = 0.0
    allow_stale: bool = False
    forwarded: bool = False
    caller: Caller = Caller()


def envelope_of(req: Envelope) -> Envelope:
    """The envelope fields of a request alone (for copying them into another request)."""
    return Envelope(**{f.name: getattr(req, f.name) for f in dataclasses.fields(Envelope)})


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryMeta:
    """What a read answers besides its value: the X-Nomad-* headers."""

    index: int = 1
    known_leader: bool = True
    last_contact_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteMeta:
    """What a write answers besides its value: the Raft index it was applied at."""

    index: int = 0


Req = TypeVar("Req", bound=Envelope)
Rep = TypeVar("Rep")


@dataclass(frozen=True, slots=True)
class Method(Generic[Req, Rep]):
    """One internal RPC: its ``Endpoint.Method`` name and the types it takes and returns."""

    name: str
    request: type[Req]
    reply: type[Rep]

    def __str__(self) -> str:
        return self.name

"""SWIM-style gossip membership for servers (one LAN pool per region), like serf/memberlist.

Standalone: imports only the stdlib, msgpack, cryptography and ``nomadd.structs.errors``.
The protocol, message types and timers are described in ``docs/contributing/gossip.md``.

API::

    cfg = GossipConfig(name="node1.global", bind_addr="10.0.0.1", bind_port=4648,
                       tags={"role": "nomad", ...}, encrypt_key=None)   # 16/24/32-byte key: AES-GCM
    pool = Gossip(cfg, on_event=callback)   # callback(MemberEvent) runs on the loop
    await pool.start()                      # binds UDP, then TCP on the same port; pool.port
    await pool.join(["10.0.0.2", "10.0.0.3:4648"]) -> int   # how many answered a push-pull
    pool.members() -> list[Member]          # ourselves included, sorted by name
    pool.local_member() -> Member
    pool.update_tags({...})                 # bumps our incarnation and disseminates
    await pool.force_leave(name, prune=False) -> ForceLeaveResult   # failed -> left (or gone)
    await pool.leave(timeout=5.0)           # "leaving", then "left", propagate delay, shutdown
    await pool.shutdown()                   # stop without telling anyone (idempotent)

Everything runs on the event loop; call the pool only from the loop (it is not thread-safe).

Events (``MemberEvent.kind``): ``join`` (new or back from failed/left; also ourselves at
start), ``update`` (tags/address), ``failed``, ``leave``, ``reap`` (dropped from the list).
Statuses (``MemberStatus``): alive, suspect, failed, leaving, left.

``GossipPool`` is the Protocol both ``Gossip`` and ``FakeGossip`` (in-memory, for server unit
tests, driven with ``add``/``fail``/``leave_member``/``reap``/``joinable``) satisfy.
"""

from __future__ import annotations

from nomadd.gossip.fake import FakeGossip, GossipPool
from nomadd.gossip.gossip import Gossip
from nomadd.gossip.member import (
    DEFAULT_SERF_PORT,
    EventKind,
    ForceLeaveResult,
    GossipConfig,
    Member,
    MemberEvent,
    MemberStatus,
)

__all__ = [
    "DEFAULT_SERF_PORT",
    "EventKind",
    "FakeGossip",
    "ForceLeaveResult",
    "Gossip",
    "GossipConfig",
    "GossipPool",
    "Member",
    "MemberEvent",
    "MemberStatus",
]

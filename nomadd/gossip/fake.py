"""An in-memory gossip pool for server unit tests (docs/contributing/style.md §Testing: fakes, not mocks).

:class:`FakeGossip` has :class:`Gossip`'s public API (both satisfy :class:`GossipPool`) and the
same state machine (:class:`MemberTable`), so statuses, incarnations, events and force-leave
results behave exactly as in the real pool, but nothing touches a socket and time only moves
when the test says so. The test drives membership::

    pool = FakeGossip(GossipConfig(name="s1.global", tags=tags), on_event=server.on_event)
    await pool.start()
    pool.add("s2.global", tags={...})        # event join
    pool.fail("s2.global")                   # event failed
    pool.leave_member("s3.global")           # leaving, then left: event leave
    pool.joinable["10.0.0.9:4648"] = [...]   # what join(["10.0.0.9"]) will find

Events are delivered with ``loop.call_soon`` when a loop is running (as the real pool does), or
synchronously otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from nomadd.gossip.member import (
    DEFAULT_SERF_PORT,
    ForceLeaveResult,
    GossipConfig,
    Member,
    MemberEvent,
)
from nomadd.gossip.messages import Alive, Dead, Intent
from nomadd.gossip.state import MemberTable, NodeRecord
from nomadd.gossip.transport import parse_host_port
from nomadd.structs.errors import ConfigError, NomaddError

__all__ = ["FakeGossip", "GossipPool"]


class GossipPool(Protocol):
    """What the server uses of a gossip pool: :class:`Gossip` and :class:`FakeGossip`."""

    port: int

    async def start(self) -> None: ...
    async def join(self, addrs: Sequence[str]) -> int: ...
    async def leave(self, timeout: float = 5.0) -> None: ...
    async def shutdown(self) -> None: ...
    def members(self) -> list[Member]: ...
    def local_member(self) -> Member: ...
    def update_tags(self, tags: dict[str, str]) -> None: ...
    async def force_leave(self, name: str, prune: bool = False) -> ForceLeaveResult: ...


class FakeGossip:
    """In-memory :class:`GossipPool`; see the module docstring."""

    def __init__(
        self,
        config: GossipConfig,
        on_event: Callable[[MemberEvent], None] | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._clock = clock
        self._table: MemberTable | None = None
        self.port = 0
        self.stopped = False
        self.joined: list[str] = []  # every address join() was asked for, in order
        self.joinable: dict[str, list[Member]] = {}  # "ip:port" -> members found there

    # --- GossipPool -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._table is not None:
            raise RuntimeError("gossip already started")
        cfg = self._config
        self.port = cfg.bind_port or DEFAULT_SERF_PORT
        addr = cfg.advertise_addr or (cfg.bind_addr if cfg.bind_addr != "0.0.0.0" else "127.0.0.1")
        self._table = MemberTable(
            config=cfg,
            addr=addr,
            port=cfg.advertise_port or self.port,
            emit=self._emit,
            clock=self._clock or time.monotonic,
        )

    async def join(self, addrs: Sequence[str]) -> int:
        table = self._require_table()
        joined = 0
        for address in addrs:
            self.joined.append(address)
            try:
                host, port = parse_host_port(address)
            except ConfigError:
                continue
            found = self.joinable.get(f"{host}:{port}")
            if found is None:
                continue
            joined += 1
            for m in found:
                table.handle_alive(
                    Alive(name=m.name, addr=m.addr, port=m.port, inc=m.incarnation, tags=m.tags)
                )
        return joined

    async def leave(self, timeout: float = 5.0) -> None:
        table = self._require_table()
        if not self.stopped:
            table.start_local_leave()
            table.finish_local_leave()
        await self.shutdown()

    async def shutdown(self) -> None:
        self.stopped = True

    def members(self) -> list[Member]:
        return self._require_table().members()

    def local_member(self) -> Member:
        return self._require_table().local.to_member()

    def update_tags(self, tags: dict[str, str]) -> None:
        self._require_table().update_local_tags(tags)

    async def force_leave(self, name: str, prune: bool = False) -> ForceLeaveResult:
        result, _ = self._require_table().force_leave(name, prune)
        return result

    # --- test controls ----------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        addr: str = "127.0.0.1",
        port: int = DEFAULT_SERF_PORT,
        tags: dict[str, str] | None = None,
    ) -> Member:
        """A member joins, or an existing one comes back/changes (its incarnation is bumped)."""
        table = self._require_table()
        known = table.nodes.get(name)
        inc = known.inc + 1 if known is not None else 0
        table.handle_alive(Alive(name=name, addr=addr, port=port, inc=inc, tags=dict(tags or {})))
        return table.nodes[name].to_member()

    def fail(self, name: str) -> None:
        """The member stops answering: declared failed (as after a suspicion timeout)."""
        table = self._require_table()
        node = self._node(name)
        table.handle_dead(Dead(name=name, inc=node.inc, source=table.local.name))

    def leave_member(self, name: str) -> None:
        """The member leaves gracefully: leaving, then left."""
        table = self._require_table()
        node = self._node(name)
        table.handle_intent(Intent(name=name, inc=node.inc))
        table.handle_dead(Dead(name=name, inc=node.inc, source=name))

    def reap(self, name: str) -> bool:
        """The failed/left member's timeout expired: it is dropped (event reap)."""
        return self._require_table().reap(name)

    # --- internals --------------------------------------------------------------------------

    def _node(self, name: str) -> NodeRecord:
        node = self._require_table().nodes.get(name)
        if node is None:
            raise NomaddError(f"fake gossip: no member named {name}")
        return node

    def _emit(self, event: MemberEvent) -> None:
        if self._on_event is None:
            return
        try:
            asyncio.get_running_loop().call_soon(self._on_event, event)
        except RuntimeError:  # no running loop: a plain sync test
            self._on_event(event)

    def _require_table(self) -> MemberTable:
        if self._table is None:
            raise NomaddError("gossip: not started")
        return self._table

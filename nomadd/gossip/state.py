"""The membership state machine: SWIM + incarnation numbers, no I/O and an injected clock.

Every node record has a liveness ``state`` (alive, suspect, dead, left), an incarnation number
and a ``leaving`` flag (serf's leave intent). Rules (memberlist's ``state.go``):

* ``alive(inc)`` is accepted only if ``inc`` is greater than the known one (or the member is
  new). It clears suspicion, revives failed/left members (event ``join``) and carries tags.
* ``suspect(inc)`` with ``inc >= known`` turns an alive member suspect with a deadline of
  ``suspicion_mult * max(1, log10(n)) * probe_interval``. About ourselves we **refute**: bump our
  incarnation past it and broadcast ``alive``.
* ``dead(inc)`` marks a member failed (``source == name``, or a leaving member: left). About
  ourselves, refute unless we are leaving.
* Failed members are reaped after ``reconnect_timeout``, left ones after ``tombstone_timeout``.

Every accepted change is re-broadcast through :class:`BroadcastQueue`; events go to ``emit``.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from nomadd.gossip.broadcast import BroadcastQueue
from nomadd.gossip.member import (
    EventKind,
    ForceLeaveResult,
    GossipConfig,
    Member,
    MemberEvent,
    MemberStatus,
)
from nomadd.gossip.messages import (
    Alive,
    Dead,
    ForceLeave,
    Intent,
    Message,
    NodeState,
    Suspect,
    encode_message,
)

__all__ = ["Liveness", "MemberTable", "NodeRecord"]

logger = logging.getLogger(__name__)

GOSSIP_TO_THE_DEAD_S = 30.0  # keep gossiping to fresh failures so a false positive can refute


class Liveness(enum.StrEnum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"
    LEFT = "left"


@dataclass(slots=True, kw_only=True)
class NodeRecord:
    name: str
    addr: str
    port: int
    tags: dict[str, str]
    inc: int
    state: Liveness
    leaving: bool = False
    state_change: float = 0.0
    suspect_deadline: float = math.inf

    @property
    def status(self) -> MemberStatus:
        if self.state is Liveness.LEFT:
            return MemberStatus.LEFT
        if self.state is Liveness.DEAD:
            return MemberStatus.FAILED
        if self.leaving:
            return MemberStatus.LEAVING
        if self.state is Liveness.SUSPECT:
            return MemberStatus.SUSPECT
        return MemberStatus.ALIVE

    def to_member(self) -> Member:
        return Member(
            name=self.name,
            addr=self.addr,
            port=self.port,
            tags=dict(self.tags),
            status=self.status,
            incarnation=self.inc,
        )

    def to_alive(self) -> Alive:
        return Alive(name=self.name, addr=self.addr, port=self.port, inc=self.inc, tags=self.tags)

    def to_state(self) -> NodeState:
        return NodeState(
            name=self.name,
            addr=self.addr,
            port=self.port,
            inc=self.inc,
            tags=dict(self.tags),
            state=self.state.value,
            leaving=self.leaving,
        )


class MemberTable:
    """All members (ourselves included) and the broadcast queue. Single-threaded (the loop)."""

    def __init__(
        self,
        *,
        config: GossipConfig,
        addr: str,
        port: int,
        emit: Callable[[MemberEvent], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._emit = emit
        self._clock = clock
        self.broadcasts = BroadcastQueue(config.retransmit_mult)
        self.local = NodeRecord(
            name=config.name,
            addr=addr,
            port=port,
            tags=dict(config.tags),
            inc=0,
            state=Liveness.ALIVE,
            state_change=clock(),
        )
        self.nodes: dict[str, NodeRecord] = {self.local.name: self.local}
        self._event(EventKind.JOIN, self.local)

    # --- queries ----------------------------------------------------------------------------

    def live_count(self) -> int:
        return sum(1 for n in self.nodes.values() if n.state in (Liveness.ALIVE, Liveness.SUSPECT))

    def suspicion_timeout(self, tags: dict[str, str] | None = None) -> float:
        """How long a member (with ``tags``: its own, remote members wait longer) stays suspect."""
        n = max(1, self.live_count())
        mult = self._config.suspicion_mult_for(tags) if tags is not None else self._config.suspicion_mult
        return mult * max(1.0, math.log10(n)) * self._config.probe_interval

    def members(self) -> list[Member]:
        return [n.to_member() for n in sorted(self.nodes.values(), key=lambda n: n.name)]

    def peers(self, *states: Liveness) -> list[NodeRecord]:
        """Other members in one of ``states``."""
        return [n for n in self.nodes.values() if n is not self.local and n.state in states]

    def gossip_targets(self) -> list[NodeRecord]:
        now = self._clock()
        out = self.peers(Liveness.ALIVE, Liveness.SUSPECT)
        out += [
            n for n in self.peers(Liveness.DEAD, Liveness.LEFT) if now - n.state_change < GOSSIP_TO_THE_DEAD_S
        ]
        return out

    def snapshot(self) -> list[NodeState]:
        return [n.to_state() for n in self.nodes.values()]

    # --- message handlers -------------------------------------------------------------------

    def handle(self, msg: Message) -> None:
        """Apply a disseminated update (ping/ack traffic is handled by the transport)."""
        match msg:
            case Alive():
                self.handle_alive(msg)
            case Suspect():
                self.handle_suspect(msg)
            case Dead():
                self.handle_dead(msg)
            case Intent():
                self.handle_intent(msg)
            case ForceLeave():
                self.handle_force_leave(msg)
            case _:
                pass

    def handle_alive(self, msg: Alive) -> None:
        if msg.name == self.local.name:
            self._alive_about_self(msg)
            return
        node = self.nodes.get(msg.name)
        if node is None:
            node = NodeRecord(
                name=msg.name,
                addr=msg.addr,
                port=msg.port,
                tags=dict(msg.tags),
                inc=msg.inc,
                state=Liveness.ALIVE,
                state_change=self._clock(),
            )
            self.nodes[msg.name] = node
            self._broadcast(msg.name, msg)
            logger.info("gossip member joined name=%s addr=%s:%d", msg.name, msg.addr, msg.port)
            self._event(EventKind.JOIN, node)
            return
        if msg.inc <= node.inc:
            return
        old_status = node.status
        changed = (node.addr, node.port, node.tags) != (msg.addr, msg.port, msg.tags)
        if node.state is not Liveness.ALIVE:
            node.state_change = self._clock()
        node.addr, node.port, node.tags, node.inc = msg.addr, msg.port, dict(msg.tags), msg.inc
        node.state = Liveness.ALIVE
        node.leaving = False
        node.suspect_deadline = math.inf
        self._broadcast(msg.name, msg)
        if old_status in (MemberStatus.FAILED, MemberStatus.LEFT):
            logger.info("gossip member rejoined name=%s inc=%d", msg.name, msg.inc)
            self._event(EventKind.JOIN, node)
        elif changed:
            self._event(EventKind.UPDATE, node)

    def _alive_about_self(self, msg: Alive) -> None:
        local = self.local
        if msg.inc < local.inc or local.leaving or local.state is Liveness.LEFT:
            return
        same = (msg.addr, msg.port, msg.tags) == (local.addr, local.port, local.tags)
        if msg.inc == local.inc and same:
            return
        if not same:
            logger.warning(
                "gossip name conflict or stale self state name=%s addr=%s:%d inc=%d",
                msg.name,
                msg.addr,
                msg.port,
                msg.inc,
            )
        self._refute(msg.inc)

    def handle_suspect(self, msg: Suspect) -> None:
        node = self.nodes.get(msg.name)
        if node is None or msg.inc < node.inc:
            return
        if node is self.local:
            if not (node.leaving or node.state is Liveness.LEFT):
                logger.debug("gossip refuting suspicion source=%s inc=%d", msg.source, msg.inc)
                self._refute(msg.inc)
            return
        if node.state is not Liveness.ALIVE:
            return
        now = self._clock()
        node.inc = msg.inc
        node.state = Liveness.SUSPECT
        node.state_change = now
        node.suspect_deadline = now + self.suspicion_timeout(node.tags)
        self._broadcast(msg.name, msg)
        logger.info("gossip member suspect name=%s source=%s", msg.name, msg.source)

    def handle_dead(self, msg: Dead) -> None:
        node = self.nodes.get(msg.name)
        if node is None or msg.inc < node.inc or node.state is Liveness.LEFT:
            return
        graceful = msg.source == msg.name or node.leaving
        if node.state is Liveness.DEAD and not graceful:
            return
        if node is self.local and not node.leaving:
            self._refute(msg.inc)
            return
        node.inc = msg.inc
        node.state = Liveness.LEFT if graceful else Liveness.DEAD
        node.state_change = self._clock()
        node.suspect_deadline = math.inf
        self._broadcast(msg.name, msg)
        if graceful:
            logger.info("gossip member left name=%s", msg.name)
            self._event(EventKind.LEAVE, node)
        else:
            logger.warning("gossip member failed name=%s source=%s", msg.name, msg.source)
            self._event(EventKind.FAILED, node)

    def handle_intent(self, msg: Intent) -> None:
        node = self.nodes.get(msg.name)
        if node is None or msg.inc < node.inc or node.leaving:
            return
        if node.state in (Liveness.DEAD, Liveness.LEFT):
            return
        if node is self.local:
            self._refute(msg.inc)  # a stale intent of a previous life: say we are back
            return
        node.inc = msg.inc
        node.leaving = True
        self._broadcast(msg.name, msg)
        logger.info("gossip member leaving name=%s", msg.name)

    def handle_force_leave(self, msg: ForceLeave) -> bool:
        """Failed → left (+ drop when pruning); alive members are never touched."""
        node = self.nodes.get(msg.name)
        if node is None or node is self.local or msg.inc < node.inc:
            return False
        changed = False
        if node.state is Liveness.DEAD:
            node.state = Liveness.LEFT
            node.state_change = self._clock()
            changed = True
            logger.info("gossip member force-left name=%s", msg.name)
            self._event(EventKind.LEAVE, node)
        if msg.prune and node.state is Liveness.LEFT:
            del self.nodes[msg.name]
            changed = True
            logger.info("gossip member pruned name=%s", msg.name)
            self._event(EventKind.REAP, node)
        if changed:
            self._broadcast("force-leave:" + msg.name, msg)
        return changed

    def force_leave(self, name: str, prune: bool) -> tuple[ForceLeaveResult, ForceLeave | None]:
        """The local ``force-leave`` command: the result, and the message to disseminate."""
        node = self.nodes.get(name)
        if node is None:
            result = ForceLeaveResult(
                name=name, previous=None, status=None, changed=False, message="no such member"
            )
            return result, None
        previous = node.status
        if node is self.local or node.state in (Liveness.ALIVE, Liveness.SUSPECT):
            message = f"member is {previous}: only failed members can be forced to leave"
            result = ForceLeaveResult(
                name=name, previous=previous, status=previous, changed=False, message=message
            )
            return result, None
        msg = ForceLeave(name=name, inc=node.inc, prune=prune)
        changed = self.handle_force_leave(msg)
        after = self.nodes.get(name)
        status = after.status if after is not None else None
        text = "pruned" if after is None else f"now {status}" if changed else f"already {status}"
        result = ForceLeaveResult(name=name, previous=previous, status=status, changed=changed, message=text)
        return result, msg if changed else None

    def merge(self, states: list[NodeState], source: str) -> None:
        """Merge a push-pull peer's full state (memberlist ``mergeState``)."""
        for s in states:
            if s.state == Liveness.ALIVE or s.state == Liveness.SUSPECT:
                known = self.nodes.get(s.name)
                if s.state == Liveness.ALIVE or known is None:
                    self.handle_alive(Alive(name=s.name, addr=s.addr, port=s.port, inc=s.inc, tags=s.tags))
                if s.state == Liveness.SUSPECT:
                    self.handle_suspect(Suspect(name=s.name, inc=s.inc, source=source))
                if s.leaving:
                    self.handle_intent(Intent(name=s.name, inc=s.inc))
            elif s.state == Liveness.LEFT:
                self.handle_dead(Dead(name=s.name, inc=s.inc, source=s.name))
            else:  # a remote "dead" only makes us suspect: the member gets a chance to refute
                self.handle_suspect(Suspect(name=s.name, inc=s.inc, source=source))

    # --- local actions ----------------------------------------------------------------------

    def suspect_after_probe(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is not None and node.state is Liveness.ALIVE:
            self.handle_suspect(Suspect(name=name, inc=node.inc, source=self.local.name))

    def update_local_tags(self, tags: dict[str, str]) -> None:
        self.local.tags = dict(tags)
        self.local.inc += 1
        self._broadcast(self.local.name, self.local.to_alive())
        self._event(EventKind.UPDATE, self.local)

    def start_local_leave(self) -> Intent:
        self.local.leaving = True
        intent = Intent(name=self.local.name, inc=self.local.inc)
        self._broadcast(self.local.name, intent)
        return intent

    def finish_local_leave(self) -> Dead:
        dead = Dead(name=self.local.name, inc=self.local.inc, source=self.local.name)
        self.local.leaving = True
        self.handle_dead(dead)
        return dead

    def tick(self) -> None:
        """Expire suspicions and reap old failed/left members. Call a few times a second."""
        now = self._clock()
        for node in list(self.nodes.values()):
            if node is self.local:
                continue
            if node.state is Liveness.SUSPECT and node.suspect_deadline <= now:
                self.handle_dead(Dead(name=node.name, inc=node.inc, source=self.local.name))
            elif (
                node.state is Liveness.DEAD and now - node.state_change >= self._config.reconnect_timeout
            ) or (node.state is Liveness.LEFT and now - node.state_change >= self._config.tombstone_timeout):
                self.reap(node.name)

    def reap(self, name: str) -> bool:
        """Forget a failed or left member now (event ``reap``); others are kept."""
        node = self.nodes.get(name)
        if node is None or node is self.local or node.state not in (Liveness.DEAD, Liveness.LEFT):
            return False
        del self.nodes[name]
        logger.info("gossip member reaped name=%s status=%s", name, node.status)
        self._event(EventKind.REAP, node)
        return True

    # --- internals --------------------------------------------------------------------------

    def _refute(self, inc: int) -> None:
        self.local.inc = max(self.local.inc, inc) + 1
        self._broadcast(self.local.name, self.local.to_alive())

    def _broadcast(self, key: str, msg: Message) -> None:
        self.broadcasts.queue(key, encode_message(msg))

    def _event(self, kind: EventKind, node: NodeRecord) -> None:
        self._emit(MemberEvent(kind=kind, member=node.to_member()))

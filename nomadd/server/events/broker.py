"""The event broker: a bounded ring of event batches and the subscriptions reading it.

Nomad's ``nomad/stream`` (``event_broker.go``, ``event_buffer.go``, ``subscription.go``): a
subscriber that falls more than ``event_buffer_size`` batches behind (it stopped reading, or reads
slower than the cluster writes) is closed with :data:`ERR_SUBSCRIPTION_CLOSED_LAGGING`, as in
Nomad, so the memory held is bounded by the buffer and nothing a subscriber does can slow the FSM.
One difference on purpose: without subscribers nothing is recorded (below).

Threads: :meth:`EventBroker.publish` runs on the Raft thread (after the FSM applied an entry); it
takes the broker's lock for O(subscribers) steps and wakes waiting subscribers on their event loop
with ``call_soon_threadsafe``. It never waits for a subscriber. Subscriptions are read on the event
loop. :attr:`EventBroker.active` is read without the lock by the FSM: while it is false no changes
are tracked and no events are made (an event stream costs nothing when nobody listens; the
backlog holds what happened while someone was subscribed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from nomadd.server.acl.acl import ACL
from nomadd.server.events.topics import TRACKED_TABLES, Event, encode_event, events_from_changes

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_EVENT_BUFFER_SIZE",
    "ERR_SUBSCRIPTION_CLOSED",
    "ERR_SUBSCRIPTION_CLOSED_LAGGING",
    "Batch",
    "EventBroker",
    "SubscribeRequest",
    "Subscription",
    "SubscriptionClosedError",
    "acl_allows_subscription",
]

DEFAULT_EVENT_BUFFER_SIZE = 100  # Nomad's event_buffer_size default: batches (Raft indexes)
ERR_SUBSCRIPTION_CLOSED = "subscription closed by server, client should resubscribe"
# Nomad's own text (nomad/stream/event_buffer.go), which clients such as nomad-tools look for
ERR_SUBSCRIPTION_CLOSED_LAGGING = "event dropped from buffer"


class SubscriptionClosedError(Exception):
    """The subscription was closed by the server (it fell behind, the state was restored, or its
    token lost the right to read a topic)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeRequest:
    """``topics``: topic -> keys (``"*"``: every key); ``index``: first Raft index wanted
    (0: the whole backlog); ``namespace``: ``"*"`` for every namespace."""

    topics: Mapping[str, tuple[str, ...]]
    index: int = 0
    namespace: str = "default"

    def matches(self, event: Event) -> bool:
        """Nomad's subscription filter: namespace (non-namespaced events always pass), then
        the topic's keys against the event's key and filter keys."""
        if self.namespace != "*" and event.namespace and event.namespace != self.namespace:
            return False
        for topic in (event.topic, "*"):
            keys = self.topics.get(topic)
            if keys is None:
                continue
            for key in keys:
                if key == "*" or key == event.key or (event.filter_keys and key in event.filter_keys):
                    return True
        return False


def acl_allows_subscription(acl: ACL, req: SubscribeRequest) -> bool:
    """Nomad's ``aclAllowsSubscription``: read-job in the namespace for the job-side topics,
    node:read for nodes, a management token for everything else (ACL topics, node pools, ``*``)."""
    for topic in req.topics:
        if topic in ("Deployment", "Evaluation", "Allocation", "Job", "Service"):
            if not acl.allow_ns_op(req.namespace, "read-job"):
                return False
        elif topic == "Node":
            if not acl.allow_node_read():
                return False
        elif not acl.management:
            return False
    return True


class Batch:
    """The events of one Raft index; each event's JSON is made once, by the first subscriber
    that sends it."""

    __slots__ = ("_encoded", "events", "index", "seq")

    def __init__(self, seq: int, index: int, events: list[Event]) -> None:
        self.seq = seq
        self.index = index
        self.events = events
        self._encoded: list[str | None] = [None] * len(events)

    def encoded(self, i: int) -> str:
        text = self._encoded[i]
        if text is None:
            text = self._encoded[i] = encode_event(self.events[i])
        return text

    def frame(self, req: SubscribeRequest) -> str | None:
        """The NDJSON line of the events ``req`` matches, or None when it matches none."""
        parts = [self.encoded(i) for i, e in enumerate(self.events) if req.matches(e)]
        if not parts:
            return None
        return f'{{"Index":{self.index},"Events":[{",".join(parts)}]}}\n'


class Subscription:
    """One subscriber's cursor into the broker's ring; read with :meth:`next` on its loop."""

    def __init__(self, broker: EventBroker, req: SubscribeRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.req = req
        self.cursor = 0  # the sequence number of the next batch to read
        self.error: str | None = None  # set (under the broker's lock) when closed
        self._broker = broker
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()  # done when the server closes it

    async def next(self, timeout: float) -> list[Batch]:
        """The batches published since the last call; waits up to ``timeout`` for one (then
        returns ``[]``). Raises :class:`SubscriptionClosedError` once closed."""
        batches = self._broker._read(self)
        if batches:
            return batches
        waiter = self._waiter
        if waiter is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(waiter)
        return self._broker._read(self)

    def close(self) -> None:
        self._broker.unsubscribe(self)

    def _wake(self) -> None:
        """Called on the Raft thread, under the broker's lock."""
        waiter, self._waiter = self._waiter, None
        closed = self.closed if self.error is not None else None
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is reading
            if waiter is not None:
                self._loop.call_soon_threadsafe(_resolve, waiter)
            if closed is not None:
                self._loop.call_soon_threadsafe(_resolve, closed)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class EventBroker:
    """The ring of the last ``size`` batches and its subscriptions."""

    def __init__(self, size: int = DEFAULT_EVENT_BUFFER_SIZE) -> None:
        if size < 1:
            raise ValueError(f"event buffer size must be at least 1, got {size}")
        self.size = size
        self._batches: deque[Batch] = deque()
        self._next_seq = 0
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self.active = False  # any subscription open: the FSM tracks changes only then

    # ---- the FSM side (Raft thread) ------------------------------------------------------
    track_tables = TRACKED_TABLES  # the tables whose rows the FSM records while active

    def publish_changes(self, index: int, msg_type: int, changes: dict[tuple[str, str], list[Any]]) -> None:
        """Make and publish the events of one applied entry from its tracked rows. A failure
        here closes the subscriptions (they would miss events) but never fails the entry."""
        try:
            events = events_from_changes(index, msg_type, changes)
        except Exception:
            logger.exception("making events failed index=%d type=%d", index, msg_type)
            self.close_all()
            return
        if events:
            self.publish(index, events)

    def publish(self, index: int, events: list[Event]) -> None:
        with self._lock:
            self._batches.append(Batch(self._next_seq, index, events))
            self._next_seq += 1
            if len(self._batches) > self.size:
                self._batches.popleft()
            oldest = self._next_seq - len(self._batches)
            for sub in self._subs:
                if sub.error is None and sub.cursor < oldest:
                    sub.error = ERR_SUBSCRIPTION_CLOSED_LAGGING
                    logger.info("event subscription closed reason=lagging buffer_size=%d", self.size)
                    sub._wake()
                elif sub._waiter is not None:
                    sub._wake()

    def close_all(self, reason: str = ERR_SUBSCRIPTION_CLOSED) -> None:
        """Close every subscription (the state was replaced by a snapshot restore)."""
        with self._lock:
            for sub in self._subs:
                if sub.error is None:
                    sub.error = reason
                    sub._wake()

    # ---- the subscriber side (event loop) ------------------------------------------------
    def subscribe(self, req: SubscribeRequest) -> Subscription:
        """A subscription starting at the first buffered batch with an index >= ``req.index``
        (the oldest one when that index is no longer buffered). Call on the reading loop."""
        sub = Subscription(self, req, asyncio.get_running_loop())
        with self._lock:
            sub.cursor = self._next_seq
            for batch in self._batches:
                if batch.index >= req.index:
                    sub.cursor = batch.seq
                    break
            self._subs.add(sub)
            self.active = True
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)
            if sub.error is None:
                sub.error = ERR_SUBSCRIPTION_CLOSED
            self.active = bool(self._subs)

    def subscribers(self) -> int:
        return len(self._subs)

    def _read(self, sub: Subscription) -> list[Batch]:
        with self._lock:
            if sub.error is not None:
                raise SubscriptionClosedError(sub.error)
            oldest = self._next_seq - len(self._batches)
            batches = list(islice(self._batches, sub.cursor - oldest, None))
            sub.cursor = self._next_seq
            if not batches and sub._waiter is None:
                sub._waiter = sub._loop.create_future()
            return batches

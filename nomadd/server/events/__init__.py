"""The event stream's server side: events made from what the FSM applies (Nomad's
``nomad/state/events.go``, :mod:`.topics`) into a bounded buffer that subscriptions read
(Nomad's ``nomad/stream``, :mod:`.broker`). The HTTP side is ``agent/http/event_endpoint.py``;
docs/events.md describes the stream."""

from __future__ import annotations

from nomadd.server.events.broker import (
    DEFAULT_EVENT_BUFFER_SIZE,
    ERR_SUBSCRIPTION_CLOSED,
    ERR_SUBSCRIPTION_CLOSED_LAGGING,
    Batch,
    EventBroker,
    SubscribeRequest,
    Subscription,
    SubscriptionClosedError,
    acl_allows_subscription,
)
from nomadd.server.events.topics import Event, events_from_changes

__all__ = [
    "DEFAULT_EVENT_BUFFER_SIZE",
    "ERR_SUBSCRIPTION_CLOSED",
    "ERR_SUBSCRIPTION_CLOSED_LAGGING",
    "Batch",
    "Event",
    "EventBroker",
    "SubscribeRequest",
    "Subscription",
    "SubscriptionClosedError",
    "acl_allows_subscription",
    "events_from_changes",
]

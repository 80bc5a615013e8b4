"""What becomes an event: Nomad's ``nomad/state/events.go``, as two tables.

An event is made from one row a Raft entry wrote (the store's change tracking,
:meth:`~nomadd.server.state.store.Txn.track`), exactly as Nomad makes them from go-memdb's
changes: the *table* of the row gives the topic, key, namespace, filter keys and payload
(:data:`TABLE_TOPICS`); the *message type* of the entry gives the event type
(:data:`MSG_EVENT_TYPES`) — so a job register's evaluation is a ``JobRegistered`` event of topic
``Evaluation``, as in Nomad. An entry whose type has no event type makes no events; a deleted row
makes an event only for the tables marked ``on_delete``.

To add a topic (services): add its table to :data:`TABLE_TOPICS` and the
message types that write it to :data:`MSG_EVENT_TYPES`; nothing else changes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nomadd.structs.codec import to_api
from nomadd.structs.messages import MessageType

__all__ = [
    "MSG_EVENT_TYPES",
    "TABLE_TOPICS",
    "TRACKED_TABLES",
    "TYPE_OVERRIDES",
    "Event",
    "TopicSpec",
    "encode_event",
    "events_from_changes",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event (Nomad's ``structs.Event``); ``payload`` is the stored struct, turned into the
    API shape ``{"<payload_key>": {...}}`` only when a subscriber sends it (:func:`encode_event`)."""

    topic: str
    type: str
    key: str
    namespace: str = ""
    filter_keys: tuple[str, ...] | None = None
    index: int
    payload_key: str
    payload: Any


def _none(obj: Any) -> None:
    return None


def _same(obj: Any) -> Any:
    return obj


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    """How a row of one table becomes an event (Nomad's ``Eventer.Event()`` of its struct)."""

    topic: str
    payload_key: str  # the one key of the payload object: {"Job": ...}
    key: Callable[[Any], str]
    namespace: Callable[[Any], str] = lambda obj: ""
    filter_keys: Callable[[Any], tuple[str, ...] | None] = _none
    on_delete: bool = False  # a deleted row is an event too (its last value)
    api: Callable[[Any], Any] = _same  # what the payload shows (secrets removed, job left out)
    delete_type: str = ""  # the event type of a deleted row, whatever entry deleted it


def _alloc_payload(alloc: Any) -> Any:
    # Nomad leaves the job out of allocation events, to keep them small
    return dataclasses.replace(alloc, job=None) if alloc.job is not None else alloc


def _token_payload(token: Any) -> Any:
    return dataclasses.replace(token, secret_id="")  # the secret is the credential


TABLE_TOPICS: dict[str, TopicSpec] = {
    "jobs": TopicSpec(
        topic="Job", payload_key="Job", key=lambda j: j.id, namespace=lambda j: j.namespace, on_delete=True
    ),
    "evals": TopicSpec(
        topic="Evaluation",
        payload_key="Evaluation",
        key=lambda e: e.id,
        namespace=lambda e: e.namespace,
        filter_keys=lambda e: (e.job_id, e.deployment_id),
    ),
    "allocs": TopicSpec(
        topic="Allocation",
        payload_key="Allocation",
        key=lambda a: a.id,
        namespace=lambda a: a.namespace,
        filter_keys=lambda a: (a.job_id, a.deployment_id),
        api=_alloc_payload,
    ),
    "deployments": TopicSpec(
        topic="Deployment",
        payload_key="Deployment",
        key=lambda d: d.id,
        namespace=lambda d: d.namespace,
        filter_keys=lambda d: (d.job_id,),
    ),
    "nodes": TopicSpec(
        topic="Node", payload_key="Node", key=lambda n: n.id, on_delete=True, api=lambda n: n.sanitize()
    ),
    "node_pools": TopicSpec(topic="NodePool", payload_key="NodePool", key=lambda p: p.name, on_delete=True),
    "acl_tokens": TopicSpec(
        topic="ACLToken",
        payload_key="ACLToken",
        key=lambda t: t.accessor_id,
        on_delete=True,
        api=_token_payload,
    ),
    "acl_policies": TopicSpec(
        topic="ACLPolicy", payload_key="ACLPolicy", key=lambda p: p.name, on_delete=True
    ),
    "service_registrations": TopicSpec(
        topic="Service",
        payload_key="Service",
        key=lambda r: r.id,
        namespace=lambda r: r.namespace,
        filter_keys=lambda r: (r.job_id, r.service_name),
        on_delete=True,
        delete_type="ServiceDeregistration",
    ),
    "acl_roles": TopicSpec(
        topic="ACLRole",
        payload_key="ACLRole",
        key=lambda r: r.id,
        filter_keys=lambda r: (r.name,),
        on_delete=True,
    ),
}

TRACKED_TABLES = frozenset(TABLE_TOPICS)

_t = MessageType
MSG_EVENT_TYPES: dict[int, str] = {
    _t.NODE_REGISTER: "NodeRegistration",
    _t.NODE_DEREGISTER: "NodeDeregistration",
    _t.NODE_UPDATE_STATUS: "NodeEvent",
    _t.NODE_UPDATE_ELIGIBILITY: "NodeDrain",
    _t.NODE_UPDATE_DRAIN: "NodeDrain",
    _t.NODE_POOL_UPSERT: "NodePoolUpserted",
    _t.NODE_POOL_DELETE: "NodePoolDeleted",
    _t.JOB_REGISTER: "JobRegistered",
    _t.JOB_REGISTER_BATCH: "JobRegistered",  # several Job.Register requests in one entry
    _t.JOB_DEREGISTER: "JobDeregistered",
    _t.EVAL_UPDATE: "EvaluationUpdated",
    _t.ALLOC_CLIENT_UPDATE: "AllocationUpdated",
    _t.ALLOC_UPDATE: "AllocationUpdateDesiredStatus",
    _t.PLAN_RESULTS: "PlanResult",
    _t.DEPLOYMENT_UPDATE: "DeploymentStatusUpdate",  # Nomad's status, promotion and health updates in one
    _t.ACL_TOKEN_UPSERT: "ACLTokenUpserted",
    _t.ACL_TOKEN_DELETE: "ACLTokenDeleted",
    _t.ACL_POLICY_UPSERT: "ACLPolicyUpserted",
    _t.ACL_POLICY_DELETE: "ACLPolicyDeleted",
    _t.ACL_ROLE_UPSERT: "ACLRoleUpserted",
    _t.ACL_ROLE_DELETE: "ACLRoleDeleted",
    _t.SERVICE_REGISTRATION_UPSERT: "ServiceRegistration",
    _t.SERVICE_REGISTRATION_DELETE: "ServiceDeregistration",
}


# Where one nomadd entry does what Nomad does in two: a PLAN_RESULTS entry also carries the
# evaluation outcomes, which Nomad's worker writes with a separate Eval.Update (EvaluationUpdated).
TYPE_OVERRIDES: dict[tuple[int, str], str] = {(_t.PLAN_RESULTS, "Evaluation"): "EvaluationUpdated"}


def events_from_changes(index: int, msg_type: int, changes: dict[tuple[str, str], list[Any]]) -> list[Event]:
    """The events of one applied entry from its tracked rows, in the order they were written."""
    event_type = MSG_EVENT_TYPES.get(msg_type)
    if event_type is None:
        return []
    out: list[Event] = []
    for (table, _key), (before, after) in changes.items():
        spec = TABLE_TOPICS.get(table)
        if spec is None:
            continue
        obj = after
        if obj is None:
            if not spec.on_delete or before is None:
                continue
            obj = before
        out.append(
            Event(
                topic=spec.topic,
                type=(after is None and spec.delete_type)
                or TYPE_OVERRIDES.get((msg_type, spec.topic), event_type),
                key=spec.key(obj),
                namespace=spec.namespace(obj),
                filter_keys=spec.filter_keys(obj),
                index=index,
                payload_key=spec.payload_key,
                payload=obj,
            )
        )
    return out


def encode_event(event: Event) -> str:
    """The JSON of one event as Nomad's API sends it (``api.Event``)."""
    spec = TABLE_TOPICS.get(_TABLE_OF_TOPIC.get(event.topic, ""))
    payload = spec.api(event.payload) if spec is not None else event.payload
    return json.dumps(
        {
            "Topic": event.topic,
            "Type": event.type,
            "Key": event.key,
            "Namespace": event.namespace,
            "FilterKeys": list(event.filter_keys) if event.filter_keys is not None else None,
            "Index": event.index,
            "Payload": {event.payload_key: to_api(payload)},
        },
        separators=(",", ":"),
    )


_TABLE_OF_TOPIC = {spec.topic: table for table, spec in TABLE_TOPICS.items()}

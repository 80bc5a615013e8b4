"""The event stream's server side: the broker's bounded buffer, slow subscribers, filters, ACLs,
and the events the real FSM makes (on one fake-Raft server and on a follower FSM)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from multidict import MultiDict

from nomadd.agent.http.event_endpoint import parse_subscribe_request
from nomadd.server.acl.acl import ACL, MANAGEMENT_ACL
from nomadd.server.events import (
    ERR_SUBSCRIPTION_CLOSED_LAGGING,
    Event,
    EventBroker,
    SubscribeRequest,
    SubscriptionClosedError,
    acl_allows_subscription,
)
from nomadd.server.fsm import FSM
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.state.store import StateStore
from nomadd.structs.errors import ValidationError
from nomadd.structs.eval import EvalStatus
from nomadd.structs.messages import MessageType
from tests.unit.server.fakes import FakeServer, api_job, wait_until

ALL = SubscribeRequest(topics={"*": ("*",)}, namespace="*")


def _ev(index: int, topic: str = "Job", key: str = "web", namespace: str = "default", **kw: Any) -> Event:
    return Event(
        topic=topic,
        type="JobRegistered",
        key=key,
        namespace=namespace,
        index=index,
        payload_key=topic,
        payload=None,
        **kw,
    )


def test_buffer_keeps_the_last_size_batches_and_a_new_subscriber_starts_at_index() -> None:
    async def main() -> None:
        broker = EventBroker(size=3)
        keep = broker.subscribe(ALL)  # a subscriber: the broker is active
        for i in range(1, 6):
            broker.publish(i * 10, [_ev(i * 10)])
        assert len(broker._batches) == 3
        late = broker.subscribe(SubscribeRequest(topics={"*": ("*",)}, index=0))
        assert [b.index for b in await late.next(0.1)] == [30, 40, 50]  # the backlog
        mid = broker.subscribe(SubscribeRequest(topics={"*": ("*",)}, index=35))
        assert [b.index for b in await mid.next(0.1)] == [40, 50]
        future = broker.subscribe(SubscribeRequest(topics={"*": ("*",)}, index=99))
        assert await future.next(0.01) == []
        with pytest.raises(SubscriptionClosedError, match="event dropped from buffer"):
            await keep.next(0.1)  # it never read: 5 batches published into a buffer of 3

    asyncio.run(main())


def test_a_subscriber_that_stops_reading_is_closed_and_never_blocks_publish() -> None:
    """Safety: a stalled subscriber costs the publisher (the FSM) nothing; it is closed once it
    falls a buffer behind, and its `closed` future wakes the handler that is stuck writing."""

    async def main() -> None:
        broker = EventBroker(size=10)
        stalled = broker.subscribe(ALL)
        reader = broker.subscribe(ALL)
        got: list[int] = []

        async def read() -> None:
            while len(got) < 1000:
                got.extend(b.index for b in await reader.next(1.0))

        reading = asyncio.ensure_future(read())
        done = threading.Event()

        def fsm_thread() -> None:  # the Raft thread publishes while the loop runs the reader
            for i in range(1, 1001):
                broker.publish(i, [_ev(i)])
                while len(got) < i - 5:  # pace to the *reading* subscriber only
                    time.sleep(0.0005)
            done.set()

        start = time.monotonic()
        t = threading.Thread(target=fsm_thread)
        t.start()
        try:
            await asyncio.wait_for(stalled.closed, 5.0)
            await asyncio.wait_for(reading, 10.0)
        finally:
            t.join(10.0)
        assert done.is_set() and time.monotonic() - start < 10.0, "the publisher waited for a subscriber"
        assert got == list(range(1, 1001))  # the reading subscriber saw every batch, in order
        assert stalled.error == ERR_SUBSCRIPTION_CLOSED_LAGGING
        with pytest.raises(SubscriptionClosedError):
            await stalled.next(0.1)
        stalled.close()
        reader.close()
        assert not broker.active

    asyncio.run(main())


def test_filters_by_topic_key_filter_keys_and_namespace() -> None:
    def req(*topics: str, namespace: str = "default") -> SubscribeRequest:
        return parse_subscribe_request(MultiDict([("topic", t) for t in topics] + [("namespace", namespace)]))

    job = _ev(1, "Job", "web")
    alloc = _ev(1, "Allocation", "a1", filter_keys=("web", ""))
    other_ns = _ev(1, "Job", "web", namespace="prod")
    node = _ev(1, "Node", "n1", namespace="")
    assert req("Job").matches(job) and not req("Job").matches(alloc)
    assert req("Job:web").matches(job) and not req("Job:api").matches(job)
    assert req("Allocation:web").matches(alloc)  # the job ID is a filter key of an allocation
    assert not req("Job").matches(other_ns) and req("Job", namespace="*").matches(other_ns)
    assert req("Node", namespace="prod").matches(node)  # nodes have no namespace
    assert req().matches(job) and req().matches(node)  # no topic: every topic
    assert req("Job:api", "Job:web").topics == {"Job": ("api", "web")}
    with pytest.raises(ValidationError, match="topic"):
        req("Job:a:b")
    with pytest.raises(ValidationError, match="index"):
        parse_subscribe_request(MultiDict(index="-1"))


def test_acl_allows_subscription_as_nomad() -> None:
    reader = ACL(namespaces={"default": frozenset({"read-job"})}, node="read")  # type: ignore[call-arg]
    assert acl_allows_subscription(reader, SubscribeRequest(topics={"Job": ("*",), "Node": ("*",)}))
    assert not acl_allows_subscription(reader, SubscribeRequest(topics={"Job": ("*",)}, namespace="prod"))
    assert not acl_allows_subscription(reader, SubscribeRequest(topics={"ACLToken": ("*",)}))
    assert not acl_allows_subscription(reader, SubscribeRequest(topics={"*": ("*",)}))
    assert acl_allows_subscription(MANAGEMENT_ACL, SubscribeRequest(topics={"*": ("*",)}))


def _frames(batches: list[Any], req: SubscribeRequest = ALL) -> list[dict[str, Any]]:
    return [json.loads(line) for b in batches if (line := b.frame(req)) is not None]


def test_job_register_and_scheduling_make_nomads_events_on_leader_and_follower() -> None:
    async def main() -> None:
        server = FakeServer()
        sub = server.fsm.events.subscribe(ALL)
        await server.add_node()
        server.scheduling.set_enabled(True)
        try:
            reply = await server.register_job(api_job(count=2))
            await wait_until(
                lambda: server.store.snapshot().get("evals", reply.eval_id).status == EvalStatus.COMPLETE
            )
        finally:
            server.scheduling.set_enabled(False)
        frames = _frames(await sub.next(0.1))
        events = [e for f in frames for e in f["Events"]]
        kinds = [(e["Topic"], e["Type"]) for e in events]
        assert kinds[0] == ("Node", "NodeRegistration")
        assert ("Job", "JobRegistered") in kinds and ("Evaluation", "JobRegistered") in kinds
        assert kinds.count(("Allocation", "PlanResult")) == 2
        assert ("Evaluation", "EvaluationUpdated") in kinds or ("Evaluation", "PlanResult") in kinds
        assert [f["Index"] for f in frames] == sorted(f["Index"] for f in frames)
        assert all(e["Index"] == f["Index"] for f in frames for e in f["Events"])
        job = next(e for e in events if e["Topic"] == "Job")
        assert job["Key"] == "web" and job["Namespace"] == "default" and job["FilterKeys"] is None
        assert job["Payload"]["Job"]["ID"] == "web"
        alloc = next(e for e in events if e["Topic"] == "Allocation")
        assert alloc["FilterKeys"] == ["web", ""]
        assert alloc["Payload"]["Allocation"]["Job"] is None  # left out, as Nomad does
        node = next(e for e in events if e["Topic"] == "Node")
        assert node["Payload"]["Node"]["SecretID"] == ""
        # a follower applying the same entries from their bytes makes the same events
        follower = FSM(StateStore(), entry_kinds(), EventBroker(1000))
        fsub = follower.events.subscribe(ALL)
        for index, msg_type, payload in server.raft.entries:
            follower.apply(index, msg_type, payload)
        assert _frames(await fsub.next(0.1)) == frames

    asyncio.run(main())


def test_no_subscriber_no_tracking() -> None:
    """Without subscribers the FSM records nothing and makes no events."""

    async def main() -> None:
        server = FakeServer()
        await server.register_job(api_job(count=1))
        assert len(server.fsm.events._batches) == 0
        sub = server.fsm.events.subscribe(SubscribeRequest(topics={"Job": ("*",)}))
        await server.register_job(api_job("api", count=1))
        frames = _frames(await sub.next(0.1), sub.req)
        assert [e["Key"] for f in frames for e in f["Events"]] == ["api"]

    asyncio.run(main())


def test_acl_token_events_redact_the_secret() -> None:
    from nomadd.server.events.topics import encode_event, events_from_changes
    from nomadd.structs.acl import ACLToken

    token = ACLToken(accessor_id="acc", secret_id="s3cr3t", name="t")
    events = events_from_changes(7, MessageType.ACL_TOKEN_UPSERT, {("acl_tokens", "acc"): [None, token]})
    assert [(e.topic, e.type, e.key) for e in events] == [("ACLToken", "ACLTokenUpserted", "acc")]
    assert "s3cr3t" not in encode_event(events[0])
    deleted = events_from_changes(8, MessageType.ACL_TOKEN_DELETE, {("acl_tokens", "acc"): [token, None]})
    assert [e.type for e in deleted] == ["ACLTokenDeleted"]
    assert events_from_changes(9, MessageType.EVAL_DELETE, {("evals", "e"): [object(), None]}) == []


def test_an_operator_snapshot_restore_closes_the_subscriptions() -> None:
    from nomadd.structs.requests.snapshot import OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest
    from tests.unit.server.test_snapshot import _restore, _server

    async def main() -> None:
        src = _server()
        await src.register_job(api_job("a"))
        saved = await src.rpc(OPERATOR_SNAPSHOT_SAVE, SnapshotSaveRequest())
        dst = _server()
        sub = dst.fsm.events.subscribe(ALL)
        await dst.register_job(api_job("b"))
        assert (await _restore(dst, saved.archive, chunk=4096)).done
        with pytest.raises(SubscriptionClosedError, match="resubscribe"):
            await sub.next(0.1)
        await asyncio.wait_for(sub.closed, 1.0)

    asyncio.run(main())


def test_node_pool_events() -> None:
    from nomadd.server.events.topics import encode_event, events_from_changes
    from nomadd.structs.namespace import NodePool

    pool = NodePool(name="gpu", description="d")
    up = events_from_changes(5, MessageType.NODE_POOL_UPSERT, {("node_pools", "gpu"): [None, pool]})
    assert [(e.topic, e.type, e.key, e.namespace) for e in up] == [
        ("NodePool", "NodePoolUpserted", "gpu", "")
    ]
    assert json.loads(encode_event(up[0]))["Payload"]["NodePool"]["Name"] == "gpu"
    gone = events_from_changes(6, MessageType.NODE_POOL_DELETE, {("node_pools", "gpu"): [pool, None]})
    assert [e.type for e in gone] == ["NodePoolDeleted"]
    reader = ACL(node="read")  # type: ignore[call-arg]
    assert not acl_allows_subscription(
        reader, SubscribeRequest(topics={"NodePool": ("*",)})
    )  # management only

"""Service registrations: a client registers its allocation's set, only for its own
allocations; they leave the catalog when the allocation stops, when its node is removed, or on
an API delete; the rows survive a snapshot restore and decode the same on a follower."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from nomadd.server.events.topics import encode_event, events_from_changes
from nomadd.server.state import store_allocs, store_services
from nomadd.server.state.store import StateStore, dump_snapshot
from nomadd.structs.alloc import Allocation, AllocClientStatus
from nomadd.structs.errors import NotFoundError, PermissionDeniedError
from nomadd.structs.messages import MessageType
from nomadd.structs.node import Node
from nomadd.structs.requests.node import NODE_DEREGISTER, NodeDeregisterRequest
from nomadd.structs.requests.services import (
    ALLOC_SERVICES,
    SERVICE_DELETE,
    SERVICE_GET,
    SERVICE_LIST,
    SERVICE_UPSERT,
    ServiceAllocRequest,
    ServiceDeleteRequest,
    ServiceGetRequest,
    ServiceListRequest,
    ServiceUpsertRequest,
)
from nomadd.structs.services import ServiceRegistration
from tests.unit.server import fakes


def _run(body: Callable[[fakes.FakeServer, Node, Allocation], Awaitable[None]]) -> None:
    async def main() -> None:
        s = fakes.FakeServer()
        s.scheduling.set_enabled(True)
        node = await s.add_node()
        await s.register_job(fakes.api_job(count=1))
        await fakes.wait_until(lambda: len(store_allocs.list_allocs(s.store.snapshot())) == 1)
        (alloc,) = store_allocs.list_allocs(s.store.snapshot())
        try:
            await body(s, node, alloc)
        finally:
            s.scheduling.set_enabled(False)

    asyncio.run(main())


def _reg(alloc: Allocation, name: str = "web", port: int = 8080) -> ServiceRegistration:
    return ServiceRegistration(
        id=f"_nomad-task-{alloc.id}-{name}", service_name=name, tags=("a",), address="10.0.0.1", port=port
    )


def _names(s: fakes.FakeServer) -> list[str]:
    return [r.service_name for r in store_services.list_all(s.store.snapshot())]


def test_register_list_get_and_replace() -> None:
    async def body(s: fakes.FakeServer, node: Node, alloc: Allocation) -> None:
        regs = (_reg(alloc), _reg(alloc, "admin", 9090))
        await s.rpc(
            SERVICE_UPSERT, ServiceUpsertRequest(node_id=node.id, alloc_id=alloc.id, registrations=regs)
        )
        listed = await s.rpc(SERVICE_LIST, ServiceListRequest())
        assert [(x.service_name, x.tags) for x in listed.services] == [("admin", ("a",)), ("web", ("a",))]
        got = await s.rpc(SERVICE_GET, ServiceGetRequest(service_name="web"))
        (web,) = got.registrations
        assert (web.port, web.job_id, web.node_id, web.alloc_id, web.namespace) == (
            8080,
            alloc.job_id,
            node.id,
            alloc.id,
            "default",
        )
        assert web.datacenter == node.datacenter and web.create_index > 0
        # the client's next report is the whole set: admin leaves
        await s.rpc(
            SERVICE_UPSERT, ServiceUpsertRequest(node_id=node.id, alloc_id=alloc.id, registrations=regs[:1])
        )
        assert _names(s) == ["web"]
        by_alloc = await s.rpc(ALLOC_SERVICES, ServiceAllocRequest(alloc_id=alloc.id))
        assert [r.service_name for r in by_alloc.registrations] == ["web"] and by_alloc.found
        # a follower decoding the entries has the same rows
        follower = s.follower()
        assert store_services.list_all(follower.store.snapshot()) == store_services.list_all(
            s.store.snapshot()
        )

    _run(body)


def test_only_the_allocations_node_may_register() -> None:
    async def body(s: fakes.FakeServer, node: Node, alloc: Allocation) -> None:
        other = await s.add_node()
        req = ServiceUpsertRequest(node_id=other.id, alloc_id=alloc.id, registrations=(_reg(alloc),))
        with pytest.raises(PermissionDeniedError):
            await s.rpc(SERVICE_UPSERT, req)
        assert _names(s) == []

    _run(body)


def test_stopped_allocation_leaves_the_catalog_and_cannot_come_back() -> None:
    async def body(s: fakes.FakeServer, node: Node, alloc: Allocation) -> None:
        req = ServiceUpsertRequest(node_id=node.id, alloc_id=alloc.id, registrations=(_reg(alloc),))
        await s.rpc(SERVICE_UPSERT, req)
        await s.update_allocs([alloc], AllocClientStatus.COMPLETE)
        assert _names(s) == []
        await s.rpc(SERVICE_UPSERT, req)  # a report that raced the stop
        assert _names(s) == []

    _run(body)


def test_node_removal_and_api_delete() -> None:
    async def body(s: fakes.FakeServer, node: Node, alloc: Allocation) -> None:
        reg = _reg(alloc)
        regs = (reg, _reg(alloc, "admin"))
        await s.rpc(
            SERVICE_UPSERT, ServiceUpsertRequest(node_id=node.id, alloc_id=alloc.id, registrations=regs)
        )
        with pytest.raises(NotFoundError):
            await s.rpc(SERVICE_DELETE, ServiceDeleteRequest(service_name="admin", id=reg.id))
        await s.rpc(SERVICE_DELETE, ServiceDeleteRequest(service_name="web", id=reg.id))
        assert _names(s) == ["admin"]
        await s.rpc(NODE_DEREGISTER, NodeDeregisterRequest(node_ids=(node.id,)))
        assert _names(s) == []

    _run(body)


def test_registrations_survive_a_snapshot() -> None:
    async def body(s: fakes.FakeServer, node: Node, alloc: Allocation) -> None:
        req = ServiceUpsertRequest(node_id=node.id, alloc_id=alloc.id, registrations=(_reg(alloc),))
        await s.rpc(SERVICE_UPSERT, req)
        restored = StateStore()
        restored.restore(dump_snapshot(s.store.snapshot()))
        snap = restored.snapshot()
        assert store_services.list_all(snap) == store_services.list_all(s.store.snapshot())
        assert [r.service_name for r in store_services.by_name(snap, "default", "web")] == ["web"]
        assert [r.service_name for r in store_services.by_alloc(snap, alloc.id)] == ["web"]

    _run(body)


def test_events_of_registrations() -> None:
    """Topic ``Service``: ServiceRegistration for written rows, ServiceDeregistration for removed
    ones, whichever entry removed them (an allocation's stop, say)."""
    reg = ServiceRegistration(id="r-1", service_name="web", namespace="default", job_id="j", port=80)
    key = (store_services.TABLE, reg.id)
    (up,) = events_from_changes(5, MessageType.SERVICE_REGISTRATION_UPSERT, {key: [None, reg]})
    assert (up.topic, up.type, up.key, up.filter_keys) == (
        "Service",
        "ServiceRegistration",
        "r-1",
        ("j", "web"),
    )
    assert json.loads(encode_event(up))["Payload"]["Service"]["Port"] == 80
    (down,) = events_from_changes(6, MessageType.ALLOC_CLIENT_UPDATE, {key: [reg, None]})
    assert (down.topic, down.type) == ("Service", "ServiceDeregistration")

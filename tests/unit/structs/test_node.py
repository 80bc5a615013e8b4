from __future__ import annotations

import dataclasses
import json

from nomadd.structs.codec import from_api, pack, to_api, unpack
from nomadd.structs.node import (
    MAX_NODE_EVENTS,
    DrainStrategy,
    DriverInfo,
    Node,
    NodeCpuResources,
    NodeEligibility,
    NodeEvent,
    NodeMemoryResources,
    NodeReservedCpuResources,
    NodeReservedResources,
    NodeResources,
    NodeStatus,
)


def make_node(**kw: object) -> Node:
    base = Node(
        id="11111111-2222-3333-4444-555555555555",
        secret_id="s3cr3t",
        name="client-1",
        datacenter="dc1",
        http_addr="10.0.0.5:4646",
        attributes={
            "os.name": "debian",
            "kernel.name": "linux",
            "nomad.version": "0.1.0",
            "unique.network.ip-address": "10.0.0.5",
            "unique.hostname": "client-1",
        },
        node_resources=NodeResources(
            cpu=NodeCpuResources(cpu_shares=4000, total_cpu_cores=4),
            memory=NodeMemoryResources(memory_mb=8192),
        ),
        drivers={"raw_exec": DriverInfo(detected=True, healthy=True)},
        status=NodeStatus.READY,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_api_shape_uses_nomad_names() -> None:
    doc = to_api(make_node())
    assert doc["ID"] == "11111111-2222-3333-4444-555555555555"
    assert doc["SecretID"] == "s3cr3t"
    assert doc["HTTPAddr"] == "10.0.0.5:4646"
    assert doc["NodeResources"]["Cpu"] == {  # type: ignore[index]
        "CpuShares": 4000,
        "TotalCpuCores": 4,
        "ReservableCpuCores": [],
    }
    assert doc["NodeResources"]["Memory"] == {"MemoryMB": 8192}  # type: ignore[index]
    assert doc["NodeResources"]["MinDynamicPort"] == 20000  # type: ignore[index]
    assert doc["Drivers"]["raw_exec"]["Detected"] is True  # type: ignore[index]
    assert json.loads(json.dumps(doc))["Status"] == "ready"


def test_round_trips() -> None:
    node = make_node(events=(NodeEvent(message="Node registered", subsystem="Cluster"),))
    assert unpack(Node, pack(node)) == node
    assert from_api(Node, json.loads(json.dumps(to_api(node)))) == node


def test_sanitize_blanks_secret_only() -> None:
    node = make_node()
    clean = node.sanitize()
    assert clean.secret_id == ""
    assert dataclasses.replace(clean, secret_id=node.secret_id) == node
    assert clean.sanitize() is clean


def test_with_event_keeps_last_ten() -> None:
    node = make_node()
    for i in range(MAX_NODE_EVENTS + 3):
        node = node.with_event(NodeEvent(message=f"e{i}", create_index=i))
    assert len(node.events) == MAX_NODE_EVENTS
    assert node.events[0].message == "e3"
    assert node.events[-1].message == f"e{MAX_NODE_EVENTS + 2}"


def test_stub_shape() -> None:
    node = make_node(drain_strategy=DrainStrategy(deadline=60))
    stub = to_api(node.stub())
    assert stub["Address"] == "10.0.0.5"
    assert stub["Version"] == "0.1.0"
    assert stub["Drain"] is True
    assert stub["Attributes"] is None
    assert stub["NodeResources"] is None
    assert "SecretID" not in stub
    with_os = to_api(node.stub(os=True, resources=True))
    assert with_os["Attributes"] == {"os.name": "debian"}
    assert with_os["NodeResources"]["Cpu"]["CpuShares"] == 4000  # type: ignore[index]


def test_ready_needs_status_eligibility_and_no_drain() -> None:
    assert make_node().ready()
    assert not make_node(status=NodeStatus.DOWN).ready()
    assert not make_node(scheduling_eligibility=NodeEligibility.INELIGIBLE).ready()
    assert not make_node(drain_strategy=DrainStrategy()).ready()
    assert make_node(status=NodeStatus.DOWN).terminal()


def test_comparable_resources_subtract_reserved() -> None:
    node = make_node(
        reserved_resources=NodeReservedResources(
            cpu=NodeReservedCpuResources(cpu_shares=500),
            memory=NodeMemoryResources(memory_mb=192),
        )
    )
    assert node.comparable_resources() == (3500, 8000, 0)


def test_computed_class_ignores_unique_attributes() -> None:
    a = make_node().with_computed_class()
    b = make_node(
        id="other",
        attributes={**make_node().attributes, "unique.hostname": "client-2"},
    ).with_computed_class()
    assert a.computed_class == b.computed_class
    c = make_node(attributes={**make_node().attributes, "os.name": "ubuntu"}).with_computed_class()
    assert c.computed_class != a.computed_class
    d = make_node(drivers={"raw_exec": DriverInfo(detected=True, healthy=False)})
    assert d.with_computed_class().computed_class != a.computed_class

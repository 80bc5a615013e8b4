"""Host ports (issue 16, Ports): dynamic ports come from the node's range and are never handed
out twice on a node; a static port in use makes the node infeasible; allocations carry
``AllocatedResources.Shared.Ports`` and the resolved ``Networks``."""

from __future__ import annotations

import dataclasses

import pytest

from nomadd.scheduler.ports import DYNAMIC_EXHAUSTED, STATIC_COLLISION, alloc_ports
from nomadd.scheduler.testing import Harness, mock_job
from nomadd.structs.codec import to_api
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job
from nomadd.structs.network import parse_port_list
from nomadd.structs.node import Node, NodeReservedNetworkResources
from nomadd.structs.resources import NetworkResource, Port


def with_network(job: Job, *, static: tuple[int, ...] = (), dynamic: int = 0, task_dynamic: int = 0) -> Job:
    tg = job.task_groups[0]
    net = NetworkResource(
        reserved_ports=tuple(Port(label=f"s{i}", value=v) for i, v in enumerate(static)),
        dynamic_ports=tuple(Port(label=f"d{i}") for i in range(dynamic)),
    )
    task = tg.tasks[0]
    if task_dynamic:
        own = NetworkResource(dynamic_ports=tuple(Port(label=f"t{i}") for i in range(task_dynamic)))
        task = dataclasses.replace(task, resources=dataclasses.replace(task.resources, networks=(own,)))
    tg = dataclasses.replace(tg, networks=(net,), tasks=(task,))
    return dataclasses.replace(job, task_groups=(tg,))


def narrow(h: Harness, lo: int, hi: int) -> Node:
    """A node whose dynamic port range is ``lo``..``hi``."""
    node = h.add_node()
    res = dataclasses.replace(node.node_resources, min_dynamic_port=lo, max_dynamic_port=hi)
    return h.update_node(node.id, node_resources=res)


def test_dynamic_ports_on_one_node_are_all_different() -> None:
    h = Harness(seed=7)
    node = narrow(h, 30000, 30040)
    h.run(with_network(mock_job(count=6, cpu=50, memory_mb=32), dynamic=2, task_dynamic=1))
    live = h.live_allocs("web")
    assert len(live) == 6 and {a.node_id for a in live} == {node.id}
    ports = [p for a in live for p in sorted(alloc_ports(a))]
    assert len(ports) == 18 and len(set(ports)) == 18, ports
    assert all(30000 <= p <= 30040 for p in ports)
    shared = to_api(live[0].allocated_resources)["Shared"]
    assert [p["Label"] for p in shared["Ports"]] == ["d0", "d1"]  # type: ignore[index]
    assert shared["Networks"][0]["DynamicPorts"][0]["Value"] == shared["Ports"][0]["Value"]  # type: ignore[index]
    task_net = to_api(live[0].allocated_resources)["Tasks"]["web"]["Networks"][0]  # type: ignore[index]
    assert task_net["DynamicPorts"][0]["Label"] == "t0" and task_net["DynamicPorts"][0]["Value"] >= 30000


def test_the_dynamic_range_running_out_stops_placements() -> None:
    h = Harness(seed=1)
    narrow(h, 30000, 30002)
    ev = h.run(with_network(mock_job(count=2, cpu=50, memory_mb=32), dynamic=2))
    assert len(h.live_allocs("web")) == 1
    assert ev.failed_tg_allocs["web"].dimension_exhausted == {DYNAMIC_EXHAUSTED: 1}


def test_a_static_port_taken_makes_the_node_infeasible() -> None:
    h = Harness(seed=3)
    a, b = h.add_node(), h.add_node()
    h.run(with_network(mock_job("first", count=1, cpu=50, memory_mb=32), static=(8080,)))
    (first,) = h.live_allocs("first")
    ev = h.run(with_network(mock_job("second", count=2, cpu=50, memory_mb=32), static=(8080,)))
    placed = h.live_allocs("second")
    # one more fits (on the other node); the third ask has no node left with 8080 free
    assert [x.node_id for x in placed] == [b.id if first.node_id == a.id else a.id]
    assert ev.failed_tg_allocs["web"].dimension_exhausted == {STATIC_COLLISION: 2}
    assert {8080} == alloc_ports(placed[0]) == alloc_ports(first)


def test_bad_networks_are_400s_naming_the_field() -> None:
    job = with_network(mock_job(count=1), static=(0,))
    with pytest.raises(ValidationError, match=r"TaskGroups\[0\]\.Networks\[0\]\.ReservedPorts\[0\]\.Value"):
        job.validate()
    tg = job.task_groups[0]
    twice = dataclasses.replace(
        tg,
        networks=(
            NetworkResource(
                mode="bridge", reserved_ports=(Port(label="a", value=80), Port(label="a", value=80))
            ),
        ),
    )
    with pytest.raises(ValidationError) as err:
        dataclasses.replace(job, task_groups=(twice,)).validate()
    assert "only host networking" in str(err.value) and "duplicate port label" in str(err.value)
    assert "asked for twice" in str(err.value)
    # Nomad fields of a network nomadd does not implement: a 400 naming them, never dropped
    dns = dataclasses.replace(
        tg,
        networks=(
            NetworkResource(
                dns={"Servers": ["1.1.1.1"]}, dynamic_ports=(Port(label="d", ignore_collision=True),)
            ),
        ),
    )
    with pytest.raises(ValidationError) as err:
        dataclasses.replace(job, task_groups=(dns,)).validate()
    assert "Networks[0].DNS: not supported" in str(err.value)
    assert "DynamicPorts[0].IgnoreCollision: not supported" in str(err.value)


def test_the_nodes_reserved_ports_are_never_handed_out() -> None:
    h = Harness(seed=5)
    node = narrow(h, 30000, 30003)
    rsv = dataclasses.replace(
        node.reserved_resources,
        networks=NodeReservedNetworkResources(reserved_host_ports="30000-30002,8080"),
    )
    h.update_node(node.id, reserved_resources=rsv)
    ev = h.run(with_network(mock_job(count=2, cpu=50, memory_mb=32), dynamic=1))
    assert [alloc_ports(a) for a in h.live_allocs("web")] == [{30003}]
    assert ev.failed_tg_allocs["web"].dimension_exhausted == {DYNAMIC_EXHAUSTED: 1}
    h.run(with_network(mock_job("st", count=1, cpu=50, memory_mb=32), static=(8080,)))
    assert h.live_allocs("st") == []


def test_port_lists() -> None:
    assert parse_port_list("22, 80,8000-8002") == {22, 80, 8000, 8001, 8002}
    assert parse_port_list("") == frozenset()
    for bad in ("x", "0", "9-8", "70000", "1-"):
        with pytest.raises(ValueError, match="invalid port"):
            parse_port_list(bad)


def test_a_system_job_skips_the_node_that_holds_its_static_port() -> None:
    h = Harness(seed=9)
    a, b = h.add_node(), h.add_node()
    h.run(with_network(mock_job("holder", count=1, cpu=50, memory_mb=32), static=(9090,)))
    (held,) = h.live_allocs("holder")
    system = with_network(mock_job("sys", count=1, job_type="system", cpu=50, memory_mb=32), static=(9090,))
    h.run(system)
    placed = h.live_allocs("sys")
    free = b.id if held.node_id == a.id else a.id
    assert [x.node_id for x in placed] == [free]
    assert alloc_ports(placed[0]) == {9090}

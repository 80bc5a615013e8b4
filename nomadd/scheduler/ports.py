"""Host ports on a node for a group's ``network`` blocks (Nomad's NetworkIndex, host mode).

A node's ports in use are those of its allocations that are not terminal and not stopped by the
plan, plus the plan's own placements on it. A static port in use makes the node infeasible
("network: reserved port collision"); dynamic ports are drawn at random from the node's
``min_dynamic_port``..``max_dynamic_port`` among the free ones ("network: dynamic port
exhaustion" when none is left). Only groups that ask for ports pay for any of this.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable

from nomadd.scheduler.protocols import State
from nomadd.structs.alloc import Allocation
from nomadd.structs.job import TaskGroup
from nomadd.structs.network import PortAsk, parse_port_list, port_ask
from nomadd.structs.node import Node
from nomadd.structs.resources import AllocatedPortMapping, AllocatedResources, NetworkResource, Port

__all__ = [
    "DYNAMIC_EXHAUSTED",
    "STATIC_COLLISION",
    "alloc_ports",
    "assign",
    "group_ask",
    "node_ip",
    "used_ports",
    "with_ports",
]

STATIC_COLLISION = "network: reserved port collision"
DYNAMIC_EXHAUSTED = "network: dynamic port exhaustion"
RANDOM_TRIES = 20  # then a scan, as Nomad's getDynamicPortsStochastic → getDynamicPortsPrecise


def group_ask(tg: TaskGroup) -> PortAsk:
    return port_ask(tg.networks, [n for t in tg.tasks for n in t.resources.networks])


def node_ip(node: Node) -> str:
    return node.attributes.get("unique.network.ip-address", "") or "127.0.0.1"


def alloc_ports(alloc: Allocation) -> set[int]:
    res = alloc.allocated_resources
    ports = {p.value for p in res.shared.ports}
    for task in res.tasks.values():
        for net in task.networks:
            ports.update(p.value for p in net.reserved_ports)
            ports.update(p.value for p in net.dynamic_ports)
    return ports


def used_ports(state: State, stopped: set[str], placed: Iterable[Allocation], node_id: str) -> set[int]:
    used: set[int] = set()
    for alloc in state.allocs_by_node(node_id):
        if not alloc.terminal() and alloc.id not in stopped:
            used |= alloc_ports(alloc)
    for alloc in placed:
        used |= alloc_ports(alloc)
    return used


def _reserved(node: Node) -> frozenset[int]:
    spec = node.reserved_resources.networks.reserved_host_ports
    if not spec:
        return frozenset()
    try:
        return parse_port_list(spec)
    except ValueError:  # checked when the agent loads its config; a bad one reserves nothing
        return frozenset()


def assign(
    node: Node, used: set[int], ask: PortAsk, rng: random.Random
) -> tuple[AllocatedPortMapping, ...] | str:
    """The ports of one allocation on ``node``, or why it cannot have them (the node's reserved
    ports count as in use)."""
    ip = node_ip(node)
    out = []
    taken = used | _reserved(node)
    for label, value, to in ask.static:
        if value in taken:
            return STATIC_COLLISION
        taken.add(value)
        out.append(AllocatedPortMapping(label=label, value=value, to=to, host_ip=ip))
    lo = node.node_resources.min_dynamic_port
    hi = node.node_resources.max_dynamic_port
    for label, to in ask.dynamic:
        port = next((p for p in (rng.randint(lo, hi) for _ in range(RANDOM_TRIES)) if p not in taken), 0)
        if not port:
            port = next((p for p in range(lo, hi + 1) if p not in taken), 0)
        if not port:
            return DYNAMIC_EXHAUSTED
        taken.add(port)
        out.append(AllocatedPortMapping(label=label, value=port, to=to if to else port, host_ip=ip))
    return tuple(out)


def _resolved(
    nets: tuple[NetworkResource, ...], by_label: dict[str, AllocatedPortMapping], ip: str
) -> tuple[NetworkResource, ...]:
    def port(p: Port) -> Port:
        got = by_label.get(p.label)
        return Port(
            label=p.label,
            value=got.value if got else p.value,
            to=got.to if got else p.to,
            host_network=p.host_network,
        )

    return tuple(
        NetworkResource(
            mode=n.mode or "host",
            device=n.device,
            cidr=n.cidr,
            ip=ip,
            mbits=n.mbits,
            hostname=n.hostname,
            reserved_ports=tuple(port(p) for p in n.reserved_ports),
            dynamic_ports=tuple(port(p) for p in n.dynamic_ports),
        )
        for n in nets
    )


def with_ports(
    tg: TaskGroup, resources: AllocatedResources, ports: tuple[AllocatedPortMapping, ...]
) -> AllocatedResources:
    """``resources`` with the group's and tasks' assigned ports (Nomad fills ``Shared.Ports``,
    ``Shared.Networks`` and each task's ``Networks``)."""
    if not ports:
        return resources
    ip = ports[0].host_ip
    by_label = {p.label: p for p in ports}
    tasks = {
        t.name: dataclasses.replace(
            resources.tasks[t.name], networks=_resolved(t.resources.networks, by_label, ip)
        )
        for t in tg.tasks
        if t.name in resources.tasks
    }
    group_labels = {p.label for n in tg.networks for p in (*n.reserved_ports, *n.dynamic_ports)}
    shared = dataclasses.replace(
        resources.shared,
        ports=tuple(p for p in ports if p.label in group_labels),
        networks=_resolved(tg.networks, by_label, ip),
    )
    return dataclasses.replace(resources, tasks={**resources.tasks, **tasks}, shared=shared)

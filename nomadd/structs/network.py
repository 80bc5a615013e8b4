"""Checks and views of the ``network`` blocks of a task group and its tasks (host mode).

A group's ports and its tasks' ports share one label space and one node: labels must be unique
across the group, and a static port may be asked for once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nomadd.structs.resources import MAX_PORT, NetworkResource, Port

__all__ = ["PortAsk", "network_problems", "parse_port_list", "port_ask"]

_LABEL = re.compile(r"^[A-Za-z0-9_]+$")
SUPPORTED_MODES = ("", "host")


@dataclass(frozen=True, slots=True, kw_only=True)
class PortAsk:
    """What one allocation of a group asks of a node's ports: ``(label, value, to)`` static
    ports and ``(label, to)`` dynamic ones."""

    static: tuple[tuple[str, int, int], ...] = ()
    dynamic: tuple[tuple[str, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.static or self.dynamic)


def _all(
    group_networks: tuple[NetworkResource, ...], task_networks: list[NetworkResource]
) -> list[NetworkResource]:
    return [*group_networks, *task_networks]


def port_ask(group_networks: tuple[NetworkResource, ...], task_networks: list[NetworkResource]) -> PortAsk:
    nets = _all(group_networks, task_networks)
    return PortAsk(
        static=tuple((p.label, p.value, p.to) for n in nets for p in n.reserved_ports),
        dynamic=tuple((p.label, p.to) for n in nets for p in n.dynamic_ports),
    )


def _port(errs: list[str], path: str, port: Port, static: bool) -> None:
    if not _LABEL.match(port.label):
        errs.append(f"{path}.Label: port label {port.label!r} must be letters, digits and _")
    if static and not 1 <= port.value <= MAX_PORT:
        errs.append(f"{path}.Value: static port must be between 1 and {MAX_PORT}; got {port.value}")
    if not static and port.value:
        errs.append(f"{path}.Value: a dynamic port is assigned by the scheduler; got {port.value}")
    if not -1 <= port.to <= MAX_PORT:
        errs.append(f"{path}.To: must be between -1 and {MAX_PORT}; got {port.to}")
    if port.ignore_collision:
        errs.append(f"{path}.IgnoreCollision: not supported by nomadd")
    if port.host_network not in ("", "default"):
        errs.append(
            f"{path}.HostNetwork: only the default host network is supported; got {port.host_network!r}"
        )


def network_problems(
    path: str, networks: tuple[NetworkResource, ...], labels: set[str], statics: set[int]
) -> list[str]:
    """Problems of one ``Networks`` list; ``labels``/``statics``: seen so far in the group."""
    errs: list[str] = []
    for i, net in enumerate(networks):
        npath = f"{path}[{i}]"
        if net.mode not in SUPPORTED_MODES:
            errs.append(f"{npath}.Mode: only host networking is supported; got {net.mode!r}")
        for name, value in (("DNS", net.dns), ("CNI", net.cni)):
            if value not in (None, {}, []):
                errs.append(f"{npath}.{name}: not supported by nomadd (host networking only)")
        for kind, ports in (("ReservedPorts", net.reserved_ports), ("DynamicPorts", net.dynamic_ports)):
            for j, port in enumerate(ports):
                ppath = f"{npath}.{kind}[{j}]"
                _port(errs, ppath, port, kind == "ReservedPorts")
                if port.label in labels:
                    errs.append(f"{ppath}.Label: duplicate port label {port.label!r}")
                labels.add(port.label)
                if kind == "ReservedPorts" and port.value:
                    if port.value in statics:
                        errs.append(f"{ppath}.Value: static port {port.value} asked for twice")
                    statics.add(port.value)
    return errs


def parse_port_list(spec: str) -> frozenset[int]:
    """``"22,80,8000-8100"`` as a set of ports; ValueError naming the bad part."""
    ports: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        lo_s, dash, hi_s = part.partition("-")
        try:
            lo, hi = int(lo_s), int(hi_s) if dash else int(lo_s)
        except ValueError:
            raise ValueError(f"invalid port {part!r}") from None
        if not 1 <= lo <= hi <= MAX_PORT:
            raise ValueError(f"invalid port range {part!r}")
        ports.update(range(lo, hi + 1))
    return frozenset(ports)

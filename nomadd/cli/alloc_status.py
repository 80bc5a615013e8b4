"""``nomadd alloc status [-verbose] <alloc>`` (Nomad's command/alloc_status.go, basic view):
the allocation's key/value block, then per task its state, resources and recent events."""

from __future__ import annotations

from typing import Any

from nomadd.api.allocations import Allocations
from nomadd.cli import meta
from nomadd.cli.job_status import format_kv, format_time_ns, none, short, time_ago

__all__ = ["run"]

USAGE = "nomadd alloc status [options] <allocation>"


def _client_description(alloc: dict[str, Any]) -> str:
    desc = str(alloc.get("ClientDescription") or "")
    if desc:
        return desc
    status = alloc.get("ClientStatus")
    return {"running": "Tasks are running", "pending": "No tasks have started"}.get(str(status), "<none>")


def _addresses(alloc: dict[str, Any]) -> list[list[str]]:
    """Nomad's "Allocation Addresses": the group's ports (``*label`` marks a dynamic one)."""
    shared = (alloc.get("AllocatedResources") or {}).get("Shared") or {}
    dynamic = {p.get("Label") for net in shared.get("Networks") or [] for p in net.get("DynamicPorts") or []}
    return [
        [
            f"*{p.get('Label')}" if p.get("Label") in dynamic else str(p.get("Label")),
            "yes" if p.get("Label") in dynamic else "no",
            f"{p.get('HostIP')}:{p.get('Value')}",
        ]
        for p in shared.get("Ports") or []
    ]


def _task_block(name: str, state: dict[str, Any], resources: dict[str, Any]) -> str:
    lines = [f'Task "{name}" is "{state.get("State", "pending")}"']
    cpu = ((resources.get("Cpu") or {}).get("CpuShares")) or 0
    mem = ((resources.get("Memory") or {}).get("MemoryMB")) or 0
    lines.append("Task Resources:")
    lines.append(meta.columnize([["CPU", "Memory"], [f"{cpu} MHz", f"{mem} MiB"]]))
    rows = [["Time", "Type", "Description"]]
    for ev in reversed(list(state.get("Events") or [])[-10:]):
        desc = ev.get("DisplayMessage") or ev.get("Message") or ev.get("DriverError") or ""
        if not desc and ev.get("Type") == "Terminated":
            desc = f"Exit Code: {ev.get('ExitCode', 0)}"
        rows.append([format_time_ns(ev.get("Time")), str(ev.get("Type", "")), str(desc)])
    lines.append("")
    lines.append("Recent Events:")
    lines.append(meta.columnize(rows))
    return "\n".join(lines)


def run(args: list[str]) -> int:
    fs = meta.new_flagset("alloc status")
    fs.bool("verbose", "Display full IDs.")
    parsed = meta.parse_one(fs, args, USAGE, "<allocation>")
    if parsed is None:
        return 1
    opts, arg = parsed
    verbose = bool(opts.get("verbose"))
    try:
        alloc, _ = Allocations(meta.api_client(opts)).info(arg)
    except meta.APIError as err:
        if err.status == 404:
            return meta.fail(f'No allocation(s) with prefix or id "{arg}" found')
        return meta.fail(f"Error querying allocation: {err}")
    pairs: list[tuple[str, object]] = [
        ("ID", alloc["ID"]),
        ("Eval ID", short(alloc.get("EvalID"), verbose)),
        ("Name", alloc.get("Name", "")),
        ("Node ID", short(alloc.get("NodeID"), verbose)),
        ("Node Name", none(alloc.get("NodeName"))),
        ("Job ID", alloc.get("JobID", "")),
        ("Job Version", alloc.get("JobVersion", 0)),
        ("Client Status", alloc.get("ClientStatus", "")),
        ("Client Description", _client_description(alloc)),
        ("Desired Status", alloc.get("DesiredStatus", "")),
        ("Desired Description", none(alloc.get("DesiredDescription"))),
        ("Created", time_ago(alloc.get("CreateTime"))),
        ("Modified", time_ago(alloc.get("ModifyTime"))),
    ]
    if alloc.get("PreviousAllocation"):
        pairs.append(("Previous Allocation", short(alloc["PreviousAllocation"], verbose)))
    if alloc.get("NextAllocation"):
        pairs.append(("Replacement Alloc ID", short(alloc["NextAllocation"], verbose)))
    print(format_kv(pairs))
    addresses = _addresses(alloc)
    if addresses:
        print("\nAllocation Addresses:")
        print(meta.columnize([["Label", "Dynamic", "Address"], *addresses]))
    states = alloc.get("TaskStates") or {}
    task_res = ((alloc.get("AllocatedResources") or {}).get("Tasks")) or {}
    names = sorted(set(states) | set(task_res))
    for name in names:
        print()
        print(_task_block(name, states.get(name) or {}, task_res.get(name) or {}))
    return 0

"""``nomadd node status [-verbose] [-json] [-os] [<node>]`` (Nomad's command/node_status.go).

List columns: ``ID  Node Pool  DC  Name  Class  Drain  Eligibility  Status``; ``-os`` inserts
``OS`` after ``Class``; ``-verbose`` inserts ``Address  Version`` after ``Class`` and prints full
IDs (8 characters otherwise). Empty cells print ``<none>``. With a node ID (or a unique prefix):
the node's key/value block, its events and its allocations (``-verbose`` adds attributes and
meta).
"""

from __future__ import annotations

import sys
from typing import Any

from nomadd.api.nodes import Nodes
from nomadd.cli import meta

USAGE = "nomadd node status [options] [<node>]"
SHORT_ID = 8


def _none(value: object) -> str:
    text = "" if value is None else str(value)
    return text or "<none>"


def _id(node_id: str, verbose: bool) -> str:
    return node_id if verbose else node_id[:SHORT_ID]


def resolve_node(nodes: Nodes, text: str) -> str | None:
    """The full ID of the one node whose ID starts with ``text``; prints why not and returns
    None when there is none or several."""
    if len(text) == 1:
        print("Identifier must contain at least two characters.", file=sys.stderr)
        return None
    found, _ = nodes.list(prefix=text)
    if not found:
        print(f'No node(s) with prefix "{text}" found', file=sys.stderr)
        return None
    exact = [n for n in found if n["ID"] == text]
    if len(found) > 1 and not exact:
        print(f"Prefix matched multiple nodes\n\n{_list_table(found, verbose=False, os_=False)}")
        return None
    return str((exact or found)[0]["ID"])


def _list_table(found: list[dict[str, Any]], *, verbose: bool, os_: bool) -> str:
    header = ["ID", "Node Pool", "DC", "Name", "Class"]
    if os_:
        header.append("OS")
    if verbose:
        header += ["Address", "Version"]
    header += ["Drain", "Eligibility", "Status"]
    rows = [header]
    for n in found:
        row = [_id(n["ID"], verbose), _none(n.get("NodePool")), _none(n.get("Datacenter"))]
        row += [_none(n.get("Name")), _none(n.get("NodeClass"))]
        if os_:
            row.append(_none((n.get("Attributes") or {}).get("os.name")))
        if verbose:
            row += [_none(n.get("Address")), _none(n.get("Version"))]
        row += [str(bool(n.get("Drain"))).lower(), _none(n.get("SchedulingEligibility"))]
        row.append(_none(n.get("Status")))
        rows.append(row)
    return meta.columnize(rows)


def _kv(pairs: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)} = {v}" for k, v in pairs)


def _drivers(node: dict[str, Any]) -> str:
    drivers = node.get("Drivers") or {}
    ok = sorted(name for name, d in drivers.items() if d.get("Detected") and d.get("Healthy"))
    return ",".join(ok) or "<none>"


def _single(nodes: Nodes, node: dict[str, Any], verbose: bool) -> str:
    out = [
        _kv(
            [
                ("ID", _id(node["ID"], verbose)),
                ("Name", _none(node.get("Name"))),
                ("Node Pool", _none(node.get("NodePool"))),
                ("Class", _none(node.get("NodeClass"))),
                ("DC", _none(node.get("Datacenter"))),
                ("Drain", str(node.get("DrainStrategy") is not None).lower()),
                ("Eligibility", _none(node.get("SchedulingEligibility"))),
                ("Status", _none(node.get("Status"))),
                ("CSI Controllers", "<none>"),
                ("CSI Drivers", "<none>"),
                ("Host Volumes", _none(",".join(sorted(node.get("HostVolumes") or {})))),
                ("Host Networks", "<none>"),
                ("CSI Volumes", "<none>"),
                ("Driver Status", _drivers(node)),
            ]
        )
    ]
    events = node.get("Events") or []
    out.append("\nNode Events")
    rows = [["Time", "Subsystem", "Message"]]
    rows += [[e.get("Timestamp", ""), e.get("Subsystem", ""), e.get("Message", "")] for e in reversed(events)]
    out.append(meta.columnize(rows))
    res = node.get("NodeResources") or {}
    out.append("\nNode Resources")
    out.append(
        _kv(
            [
                ("CPU", f"{(res.get('Cpu') or {}).get('CpuShares', 0)} MHz"),
                ("Memory", f"{(res.get('Memory') or {}).get('MemoryMB', 0)} MiB"),
                ("Disk", f"{(res.get('Disk') or {}).get('DiskMB', 0)} MiB"),
            ]
        )
    )
    try:
        allocs = nodes.allocations(node["ID"])
    except meta.APIError:
        allocs = []
    out.append("\nAllocations")
    if not allocs:
        out.append("No allocations placed")
    else:
        rows = [["ID", "Node ID", "Task Group", "Version", "Desired", "Status", "Created"]]
        for a in allocs:
            rows.append(
                [
                    _id(a["ID"], verbose),
                    _id(a.get("NodeID", ""), verbose),
                    a.get("TaskGroup", ""),
                    str(a.get("JobVersion", 0)),
                    a.get("DesiredStatus", ""),
                    a.get("ClientStatus", ""),
                    str(a.get("CreateTime", "")),
                ]
            )
        out.append(meta.columnize(rows))
    if verbose:
        attrs = node.get("Attributes") or {}
        out.append("\nAttributes")
        out.append(_kv([(k, str(attrs[k])) for k in sorted(attrs)]) if attrs else "<none>")
        md = node.get("Meta") or {}
        out.append("\nMeta")
        out.append(_kv([(k, str(md[k])) for k in sorted(md)]) if md else "<none>")
    return "\n".join(out)


def run(args: list[str]) -> int:
    fs = meta.new_flagset("node status")
    fs.bool("verbose", "Display full information (full IDs, address, version, attributes).")
    fs.bool("json", "Output the node(s) as JSON.")
    fs.bool("os", "Display the operating system name of each node.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    verbose, as_json = bool(opts.get("verbose")), bool(opts.get("json"))
    if len(rest) > 1:
        return meta.fail(f"This command takes either one or no arguments\nUsage: {USAGE}")
    nodes = Nodes(meta.api_client(opts))
    try:
        if not rest:
            found, _ = nodes.list(os=bool(opts.get("os")))
            if as_json:
                meta.print_json(found)
            elif not found:
                print("No nodes registered")
            else:
                print(_list_table(found, verbose=verbose, os_=bool(opts.get("os"))))
            return 0
        node_id = resolve_node(nodes, rest[0])
        if node_id is None:
            return 1
        node, _ = nodes.info(node_id)
        if as_json:
            meta.print_json(node)
        else:
            print(_single(nodes, node, verbose))
    except meta.APIError as err:
        return meta.fail(f"Error querying node info: {err}")
    return 0

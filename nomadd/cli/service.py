"""``nomadd service list`` and ``nomadd service info <name>``: nomadd's service catalog
(Nomad's native service discovery; docs/services.md)."""

from __future__ import annotations

from typing import Any

from nomadd.api.services import Services
from nomadd.cli import meta

__all__ = ["service_info", "service_list"]


def _run(
    name: str, usage: str, nargs: int, args: list[str]
) -> tuple[Services, dict[str, Any], list[str]] | int:
    fs = meta.new_flagset(name)
    fs.bool("json", "Output as JSON.")
    parsed = meta.parse(fs, args, usage)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) != nargs:
        return meta.fail(f"This command takes {nargs} argument(s)\nUsage: {usage}")
    return Services(meta.api_client(opts)), opts, rest


def service_list(args: list[str]) -> int:
    got = _run("service list", "nomadd service list [options]", 0, args)
    if isinstance(got, int):
        return got
    api, opts, _ = got
    try:
        found, _ = api.list_services()
    except meta.APIError as err:
        return meta.fail(f"Error listing services: {err}")
    if opts.get("json"):
        meta.print_json(found)
        return 0
    rows = [["Service Name", "Tags"]]
    rows += [[s["ServiceName"], f"[{','.join(s['Tags'] or [])}]"] for ns in found for s in ns["Services"]]
    if len(rows) == 1:
        print("No services found")
        return 0
    print(meta.columnize(rows))
    return 0


def service_info(args: list[str]) -> int:
    got = _run("service info", "nomadd service info [options] <service>", 1, args)
    if isinstance(got, int):
        return got
    api, opts, rest = got
    try:
        regs, _ = api.get(rest[0])
    except meta.APIError as err:
        return meta.fail(f"Error listing service registrations: {err}")
    if opts.get("json"):
        meta.print_json(regs)
        return 0
    if not regs:
        return meta.fail(f"No service registrations found for {rest[0]!r}")
    rows = [["Job ID", "Address", "Tags", "Node ID", "Alloc ID"]]
    rows += [
        [
            r["JobID"],
            f"{r['Address']}:{r['Port']}",
            f"[{','.join(r['Tags'] or [])}]",
            r["NodeID"][:8],
            r["AllocID"][:8],
        ]
        for r in regs
    ]
    print(meta.columnize(rows))
    return 0

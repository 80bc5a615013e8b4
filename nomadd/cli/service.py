"""``nomadd service list`` and ``nomadd service info <name>``: nomadd's service catalog
(Nomad's native service discovery; docs/services.md)."""

from __future__ import annotations

from nomadd.api.client import Client
from nomadd.api.services import Services
from nomadd.cli import meta
from nomadd.helper.flags import FlagSet

__all__ = ["service_info", "service_list"]


def _json_flag(fs: FlagSet) -> None:
    fs.bool("json", "Output as JSON.")


def _tags(tags: list[str] | None) -> str:
    return f"[{','.join(tags or [])}]"


def _list(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    found, _ = Services(c).list_services()
    if opts.get("json"):
        meta.print_json(found)
        return 0
    rows = [["Service Name", "Tags"]]
    rows += [[s["ServiceName"], _tags(s["Tags"])] for ns in found for s in ns["Services"]]
    if len(rows) == 1:
        print("No services found")
        return 0
    print(meta.columnize(rows))
    return 0


def _info(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    regs, _ = Services(c).get(rest[0])
    if opts.get("json"):
        meta.print_json(regs)
        return 0
    if not regs:
        return meta.fail(f"No service registrations found for {rest[0]!r}")
    rows = [["Job ID", "Address", "Tags", "Node ID", "Alloc ID"]]
    rows += [
        [r["JobID"], f"{r['Address']}:{r['Port']}", _tags(r["Tags"]), r["NodeID"][:8], r["AllocID"][:8]]
        for r in regs
    ]
    print(meta.columnize(rows))
    return 0


service_list = meta.command("service list", "", 0, _list, _json_flag)
service_info = meta.command("service info", "<service>", 1, _info, _json_flag)

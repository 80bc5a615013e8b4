"""``nomadd server members [-verbose] [-json]`` (Nomad's command/server_members.go).

Columns: ``Name  Address  Port  Status  Leader  Raft Version  Build  Datacenter  Region``;
``-verbose`` adds ``Protocol`` after ``Leader`` and ``Tags`` at the end.
"""

from __future__ import annotations

from typing import Any

from nomadd.api.members import Members
from nomadd.api.status import Status
from nomadd.cli import meta

USAGE = "nomadd server members [options]"


def _leader_flag(m: dict[str, Any], leaders: dict[str, str]) -> str:
    tags = m.get("Tags") or {}
    region = tags.get("region", "")
    addr = tags.get("raft_addr") or f"{m.get('Addr')}:{tags.get('port', '')}"
    return "true" if leaders.get(region) == addr else "false"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("server members")
    fs.bool("verbose", "Show extra information (protocol, tags).")
    fs.bool("json", "Output the members as JSON.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    client = meta.api_client(opts)
    try:
        reply = Members(client).members()
    except meta.APIError as err:
        return meta.fail(f"Error querying servers: {err}")
    members: list[dict[str, Any]] = sorted(reply.get("Members") or [], key=lambda m: m["Name"])
    if opts.get("json"):
        meta.print_json(members)
        return 0
    leaders: dict[str, str] = {}
    # Nomad's regionLeaders: each region's leader, asked of that region (forwarded to it)
    for region in sorted({str((m.get("Tags") or {}).get("region", "")) for m in members} - {""}):
        try:
            leaders[region] = Status(client).leader(region)
        except meta.APIError:
            pass  # no leader known (or no path to the region): its Leader cells say false
    verbose = bool(opts.get("verbose"))
    header = ["Name", "Address", "Port", "Status", "Leader"]
    header += ["Protocol"] if verbose else []
    header += ["Raft Version", "Build", "Datacenter", "Region"]
    header += ["Tags"] if verbose else []
    rows = [header]
    for m in members:
        tags = m.get("Tags") or {}
        row = [m["Name"], str(m["Addr"]), str(m["Port"]), m["Status"], _leader_flag(m, leaders)]
        if verbose:
            row.append(str(m.get("ProtocolCur", "")))
        row += [
            tags.get("raft_vsn", ""),
            tags.get("build", ""),
            tags.get("dc", ""),
            tags.get("region", ""),
        ]
        if verbose:
            row.append(",".join(f"{k}={tags[k]}" for k in sorted(tags)))
        rows.append(row)
    print(meta.columnize(rows))
    return 0

"""``nomadd operator autopilot health [-json]`` (Nomad's command/operator_autopilot_health.go)."""

from __future__ import annotations

from nomadd.api.operator import Operator
from nomadd.cli import meta

USAGE = "nomadd operator autopilot health [options]"


def _b(value: object) -> str:
    return "true" if value else "false"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator autopilot health")
    fs.bool("json", "Output the autopilot health as JSON.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    try:
        health = Operator(meta.api_client(opts)).autopilot_health()
    except meta.APIError as err:
        return meta.fail(f"Error querying Autopilot health: {err}")
    if opts.get("json"):
        meta.print_json(health)
        return 0
    print(f"Healthy: {_b(health.get('Healthy'))}")
    print(f"FailureTolerance: {health.get('FailureTolerance', 0)}")
    print(f"Leader: {health.get('Leader', '')}")
    print("Voters:")
    for v in health.get("Voters") or []:
        print(f"   {v}")
    print()
    print("Servers:")
    rows = [
        [
            "ID",
            "Name",
            "Address",
            "SerfStatus",
            "Version",
            "Leader",
            "Voter",
            "Healthy",
            "LastContact",
            "LastTerm",
            "LastIndex",
            "StableSince",
        ]
    ]
    for s in health.get("Servers") or []:
        rows.append(
            [
                str(s.get("ID", "")),
                str(s.get("Name", "")),
                str(s.get("Address", "")),
                str(s.get("SerfStatus", "")),
                str(s.get("Version", "")),
                _b(s.get("Leader")),
                _b(s.get("Voter")),
                _b(s.get("Healthy")),
                str(s.get("LastContact", "")),
                str(s.get("LastTerm", 0)),
                str(s.get("LastIndex", 0)),
                str(s.get("StableSince", "")),
            ]
        )
    print(meta.columnize(rows))
    return 0

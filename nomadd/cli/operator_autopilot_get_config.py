"""``nomadd operator autopilot get-config`` (Nomad's command/operator_autopilot_get.go)."""

from __future__ import annotations

from typing import Any

from nomadd.api.operator import Operator
from nomadd.cli import meta

USAGE = "nomadd operator autopilot get-config [options]"

KEYS = (
    "CleanupDeadServers",
    "LastContactThreshold",
    "MaxTrailingLogs",
    "MinQuorum",
    "ServerStabilizationTime",
    "EnableRedundancyZones",
    "DisableUpgradeMigration",
    "EnableCustomUpgrades",
)


def _show(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator autopilot get-config")
    fs.bool("json", "Output the autopilot configuration as JSON.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    try:
        conf = Operator(meta.api_client(opts)).autopilot_configuration()
    except meta.APIError as err:
        return meta.fail(f"Error querying Autopilot configuration: {err}")
    if opts.get("json"):
        meta.print_json(conf)
        return 0
    for key in KEYS:
        print(f"{key} = {_show(conf.get(key))}")
    return 0

"""``nomadd operator autopilot set-config [flags]`` (Nomad's command/operator_autopilot_set.go).

Reads the configuration, changes the given settings and writes it back with check-and-set on
its ModifyIndex, so a concurrent change is not overwritten.
"""

from __future__ import annotations

from nomadd.api.operator import Operator
from nomadd.cli import meta
from nomadd.helper.duration import parse_duration

USAGE = "nomadd operator autopilot set-config [options]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator autopilot set-config")
    fs.string("cleanup-dead-servers", "Remove dead servers automatically: true or false.")
    fs.string("last-contact-threshold", "How long a server may go without leader contact, e.g. 200ms.")
    fs.int("max-trailing-logs", "How many log entries a server may trail the leader by.")
    fs.int("min-quorum", "Never remove dead servers below this many voters.")
    fs.string("server-stabilization-time", "How long a new server must be healthy to count, e.g. 10s.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    op = Operator(meta.api_client(opts))
    try:
        conf = op.autopilot_configuration()
    except meta.APIError as err:
        return meta.fail(f"Error querying Autopilot configuration: {err}")
    if "cleanup-dead-servers" in opts:
        raw = str(opts["cleanup-dead-servers"]).lower()
        if raw not in ("true", "false"):
            return meta.fail('Error parsing -cleanup-dead-servers: must be "true" or "false"')
        conf["CleanupDeadServers"] = raw == "true"
    for flag, key in (
        ("last-contact-threshold", "LastContactThreshold"),
        ("server-stabilization-time", "ServerStabilizationTime"),
    ):
        if flag in opts:
            try:
                parse_duration(str(opts[flag]))
            except ValueError as err:
                return meta.fail(f"Error parsing -{flag}: {err}")
            conf[key] = str(opts[flag])
    for flag, key in (("max-trailing-logs", "MaxTrailingLogs"), ("min-quorum", "MinQuorum")):
        if flag in opts:
            conf[key] = opts[flag]
    try:
        updated = op.autopilot_set_configuration(conf, cas_index=int(conf.get("ModifyIndex") or 0))
    except meta.APIError as err:
        return meta.fail(f"Error setting Autopilot configuration: {err}")
    if not updated:
        return meta.fail("Configuration could not be atomically updated, please try again")
    print("Configuration updated!")
    return 0

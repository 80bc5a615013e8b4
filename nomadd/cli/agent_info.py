"""``nomadd agent-info``: the agent's /v1/agent/self stats, grouped as Nomad prints them."""

from __future__ import annotations

from nomadd.cli import meta

USAGE = "nomadd agent-info [options]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("agent-info")
    fs.bool("json", "Output the raw /v1/agent/self stats as JSON.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    try:
        value, _m = meta.api_client(opts).get("/v1/agent/self")
    except meta.APIError as err:
        return meta.fail(f"Error querying agent info: {err}")
    stats = value.get("stats", {}) if isinstance(value, dict) else {}
    if opts.get("json"):
        meta.print_json(stats)
        return 0
    for section in sorted(stats):
        print(section)
        body = stats[section]
        if isinstance(body, dict):
            for k in sorted(body):
                print(f"  {k} = {body[k]}")
    return 0

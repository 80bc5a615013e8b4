"""``nomadd alloc stop [-detach] <alloc>`` (Nomad's command/alloc_stop.go): stop the allocation
(the scheduler places a replacement) and monitor the evaluation it creates."""

from __future__ import annotations

from nomadd.api.allocations import Allocations
from nomadd.api.evaluations import Evaluations
from nomadd.cli import meta
from nomadd.cli.alloc_common import find_alloc
from nomadd.cli.job_run import monitor

__all__ = ["run"]

USAGE = "nomadd alloc stop [options] <allocation>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("alloc stop")
    fs.bool("detach", "Return immediately instead of monitoring the evaluation.")
    fs.bool("verbose", "Display full IDs.")
    parsed = meta.parse_one(fs, args, USAGE, "<allocation>")
    if parsed is None:
        return 1
    opts, arg = parsed
    client = meta.api_client(opts)
    alloc = find_alloc(client, arg)
    if alloc is None:
        return 1
    try:
        reply, _ = Allocations(client).stop(alloc["ID"])
    except meta.APIError as err:
        return meta.fail(f"Error stopping allocation: {err}")
    eval_id = str((reply or {}).get("EvalID") or "")
    if opts.get("detach") or not eval_id:
        print(eval_id)
        return 0
    try:
        return monitor(Evaluations(client), eval_id, bool(opts.get("verbose")))
    except meta.APIError as err:
        return meta.fail(f"Error reading evaluation: {err}")

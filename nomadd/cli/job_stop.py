"""``nomadd job stop [-purge] [-detach] [-yes] <job>`` (Nomad's command/job_stop.go).

Stops the job (a new version with ``Stop``; ``-purge`` removes it) and monitors the
deregistration evaluation like ``job run`` (``-detach``: print its ID and return).
"""

from __future__ import annotations

import sys

from nomadd.api.evaluations import Evaluations
from nomadd.api.jobs import Jobs
from nomadd.cli import meta
from nomadd.cli.job_run import monitor

__all__ = ["run"]

USAGE = "nomadd job stop [options] <job>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job stop")
    fs.bool("purge", "Purge the job from the system instead of only stopping it.")
    fs.bool("detach", "Return immediately instead of monitoring the evaluation.")
    fs.bool("yes", "Do not ask for confirmation (nomadd never asks).")
    fs.bool("verbose", "Display full IDs.")
    parsed = meta.parse_one(fs, args, USAGE, "<job>")
    if parsed is None:
        return 1
    opts, arg = parsed
    client = meta.api_client(opts)
    try:
        reply, _ = Jobs(client).deregister(arg, purge=bool(opts.get("purge")))
    except meta.APIError as err:
        if err.status == 404:
            return meta.fail(f'No job(s) with prefix or ID "{arg}" found')
        return meta.fail(f"Error deregistering job: {err}")
    eval_id = str(reply.get("EvalID") or "")
    if opts.get("detach") or not eval_id:
        print(eval_id)
        return 0
    try:
        return monitor(Evaluations(client), eval_id, bool(opts.get("verbose")))
    except meta.APIError as err:
        print(f"Error reading evaluation: {err}", file=sys.stderr)
        return 1

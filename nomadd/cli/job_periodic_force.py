"""``nomadd job periodic force [-detach] <job>`` (Nomad's command/job_periodic_force.go).

Launches a child of a periodic job now, whatever its schedule (and its ``prohibit_overlap``),
then monitors the child's evaluation unless ``-detach``.
"""

from __future__ import annotations

import sys

from nomadd.api.client import Client
from nomadd.api.evaluations import Evaluations
from nomadd.api.jobs import Jobs
from nomadd.cli import meta
from nomadd.cli.job_run import monitor

__all__ = ["follow", "run"]

USAGE = "nomadd job periodic force [options] <job>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job periodic force")
    fs.bool("detach", "Return immediately instead of monitoring the evaluation.")
    fs.bool("verbose", "Display full IDs.")
    parsed = meta.parse_one(fs, args, USAGE, "<job>")
    if parsed is None:
        return 1
    opts, arg = parsed
    client = meta.api_client(opts)
    try:
        reply, _ = Jobs(client).periodic_force(arg)
    except meta.APIError as err:
        if err.status == 404:
            return meta.fail(f'No job(s) with prefix or ID "{arg}" found')
        return meta.fail(f"Error forcing periodic job {arg!r}: {err}")
    eval_id = str(reply.get("EvalID") or "")
    if opts.get("detach"):
        print("Force periodic successful")
        print(f"Evaluation ID: {eval_id}")
        return 0
    return follow(client, eval_id, bool(opts.get("verbose")))


def follow(client: Client, eval_id: str, verbose: bool) -> int:
    """Monitor a launched child's evaluation to its end (``job run``'s monitor); exit code."""
    try:
        return monitor(Evaluations(client), eval_id, verbose)
    except meta.APIError as err:
        print(f"Error reading evaluation: {err}", file=sys.stderr)
        return 1

"""``nomadd job dispatch [options] <job> [input-source]`` (Nomad's command/job_dispatch.go).

Dispatches a child of a parameterized job: the payload is read from ``input-source`` (a file,
or ``-`` for stdin), ``-meta key=value`` may repeat, ``-idempotency-token`` makes a repeated
dispatch return the first child, ``-id-prefix-template`` goes into the child's ID. Monitors
the child's evaluation unless ``-detach``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nomadd.api.jobs import Jobs
from nomadd.cli import meta
from nomadd.cli.job_periodic_force import follow

__all__ = ["run"]

USAGE = "nomadd job dispatch [options] <parameterized job> [input source]"
MAX_INPUT = 16 * 1024 * 1024  # read no more (the server refuses more than 16 KiB anyway)


def _read_input(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read(MAX_INPUT)
    with Path(source).open("rb") as fh:
        return fh.read(MAX_INPUT)


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job dispatch")
    fs.strings("meta", "Meta key=value for the dispatched job; may be repeated.", "<key>=<value>")
    fs.string("idempotency-token", "A dispatch with a token an earlier child has returns that child.", "")
    fs.string("id-prefix-template", "A string put into the dispatched job's ID.", "")
    fs.int("priority", "The dispatched job's priority (default: the parameterized job's).", 0)
    fs.bool("detach", "Return immediately instead of monitoring the evaluation.")
    fs.bool("verbose", "Display full IDs.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) not in (1, 2):
        return meta.fail(f"This command takes one or two arguments: <job> [input source]\nUsage: {USAGE}")
    pairs: dict[str, str] = {}
    items = opts.get("meta") or ()
    assert isinstance(items, tuple | list)
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            return meta.fail(f'Error parsing meta value "{item}": expected key=value')
        pairs[key] = value
    payload = b""
    if len(rest) == 2:
        try:
            payload = _read_input(rest[1])
        except OSError as err:
            return meta.fail(f"Error reading input data: {err}")
    client = meta.api_client(opts)
    try:
        reply, _ = Jobs(client).dispatch(
            rest[0],
            payload,
            pairs,
            idempotency_token=str(opts.get("idempotency-token") or ""),
            id_prefix_template=str(opts.get("id-prefix-template") or ""),
            priority=int(str(opts.get("priority") or 0)),
        )
    except meta.APIError as err:
        return meta.fail(f"Failed to dispatch job: {err}")
    eval_id = str(reply.get("EvalID") or "")
    print(f"Dispatched Job ID = {reply.get('DispatchedJobID', '')}")
    if eval_id:
        print(f"Evaluation ID     = {eval_id if opts.get('verbose') else eval_id[:8]}")
    if opts.get("detach") or not eval_id:
        return 0
    print()
    return follow(client, eval_id, bool(opts.get("verbose")))

"""``nomadd job history|revert|scale|eval`` (Nomad's command/job_history.go, job_revert.go,
job_scale.go, job_eval.go).

* ``job history [-p] [-version N] <job>``: the job's versions, newest first (``-p``: each with its
  diff against the version before it, as ``job plan`` prints diffs);
* ``job revert [-detach] [-check-version N] <job> <version>``: register the job as it was at that
  version (``-check-version``: only if the current version is N, Nomad's EnforcePriorVersion);
* ``job scale [-detach] <job> [<group>] <count>``: set a group's count (the group may be left
  out when the job has one);
* ``job eval [-detach] [-force-reschedule] <job>``: a new evaluation of the job.

The writes monitor their evaluation like ``job run`` (``-detach``: print its ID and return).
"""

from __future__ import annotations

import sys
from typing import Any

from nomadd.api.client import Client
from nomadd.api.evaluations import Evaluations
from nomadd.api.jobs import Jobs
from nomadd.cli import meta
from nomadd.cli.job_plan import format_job_diff
from nomadd.cli.job_run import monitor
from nomadd.cli.job_status import format_time_ns
from nomadd.helper.flags import FlagSet

__all__ = ["eval_", "history", "revert", "scale"]


def _follow(opts: dict[str, object], client: Client, reply: dict[str, Any], detach_line: str) -> int:
    eval_id = str(reply.get("EvalID") or "")
    if opts.get("detach") or not eval_id:
        print(f"{detach_line}{eval_id}")
        return 0
    try:
        return monitor(Evaluations(client), eval_id, bool(opts.get("verbose")))
    except meta.APIError as err:
        print(f"Error reading evaluation: {err}", file=sys.stderr)
        return 1


def _writer(name: str) -> FlagSet:
    fs = meta.new_flagset(name)
    fs.bool("detach", "Return immediately instead of monitoring the evaluation.")
    fs.bool("verbose", "Display full IDs.")
    return fs


def history(args: list[str]) -> int:
    usage = "nomadd job history [options] <job>"
    fs = meta.new_flagset("job history")
    fs.bool("p", "Show each version's diff against the version before it.")
    fs.int("version", "Show only this version.")
    fs.bool("json", "Print the versions as JSON.")
    parsed = meta.parse_one(fs, args, usage, "<job>")
    if parsed is None:
        return 1
    opts, job_id = parsed
    try:
        reply, _ = Jobs(meta.api_client(opts)).version_diffs(job_id)
    except meta.APIError as err:
        if err.status == 404:
            return meta.fail(f'No job(s) with prefix or ID "{job_id}" found')
        return meta.fail(f"Error retrieving job versions: {err}")
    versions: list[dict[str, Any]] = reply.get("Versions") or []
    diffs: list[dict[str, Any]] = reply.get("Diffs") or []
    if opts.get("json"):
        meta.print_json(reply)
        return 0
    wanted = opts.get("version")
    blocks = []
    for i, job in enumerate(versions):
        if isinstance(wanted, int) and job.get("Version") != wanted:
            continue
        rows = [
            ("Version", str(job.get("Version", 0))),
            ("Stable", "true" if job.get("Stable") else "false"),
            ("Submit Date", format_time_ns(job.get("SubmitTime"))),
        ]
        text = "\n".join(f"{k:<11} = {v}" for k, v in rows)
        if opts.get("p") and i < len(diffs):
            text += "\nDiff        =\n" + format_job_diff(diffs[i]).strip()
        blocks.append(text)
    if isinstance(wanted, int) and not blocks:
        return meta.fail(f"Error: version {wanted} of job {job_id!r} not found")
    print("\n\n".join(blocks))
    return 0


def revert(args: list[str]) -> int:
    usage = "nomadd job revert [options] <job> <version>"
    fs = _writer("job revert")
    fs.int("check-version", "Revert only if the job's current version is this one.")
    parsed = meta.parse(fs, args, usage)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) != 2:
        return meta.fail(f"This command takes two arguments: <job> <version>\nUsage: {usage}")
    job_id, raw_version = rest
    try:
        version = int(raw_version)
    except ValueError:
        return meta.fail(f"The job version to revert to must be an integer, got {raw_version!r}")
    client = meta.api_client(opts)
    prior = opts.get("check-version")
    try:
        reply, _ = Jobs(client).revert(job_id, version, prior if isinstance(prior, int) else None)
    except meta.APIError as err:
        return meta.fail(f"Error retrieving job version {version} for job {job_id}: {err}")
    return _follow(opts, client, reply, "")


def scale(args: list[str]) -> int:
    usage = "nomadd job scale [options] <job> [<group>] <count>"
    fs = _writer("job scale")
    parsed = meta.parse(fs, args, usage)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) not in (2, 3):
        return meta.fail(
            f"This command takes two or three arguments: <job> [<group>] <count>\nUsage: {usage}"
        )
    try:
        count = int(rest[-1])
    except ValueError:
        return meta.fail(f"Scaling value {rest[-1]!r} is not an integer")
    client = meta.api_client(opts)
    jobs = Jobs(client)
    job_id = rest[0]
    group = rest[1] if len(rest) == 3 else ""
    try:
        if not group:
            job, _ = jobs.info(job_id)
            groups = [str(tg.get("Name", "")) for tg in job.get("TaskGroups") or []]
            if len(groups) != 1:
                return meta.fail("Group name required: the job has more than one task group")
            group = groups[0]
        reply, _ = jobs.scale(job_id, group, count, message="submitted using the nomadd CLI")
    except meta.APIError as err:
        return meta.fail(f"Error submitting scaling request: {err}")
    return _follow(opts, client, reply, "Evaluation ID: ")


def eval_(args: list[str]) -> int:
    usage = "nomadd job eval [options] <job>"
    fs = _writer("job eval")
    fs.bool(
        "force-reschedule", "Reschedule failed allocations even if their reschedule delay has not passed."
    )
    parsed = meta.parse_one(fs, args, usage, "<job>")
    if parsed is None:
        return 1
    opts, job_id = parsed
    client = meta.api_client(opts)
    try:
        reply, _ = Jobs(client).evaluate(job_id, force_reschedule=bool(opts.get("force-reschedule")))
    except meta.APIError as err:
        return meta.fail(f"Error evaluating job: {err}")
    return _follow(opts, client, reply, "Created eval ID: ")

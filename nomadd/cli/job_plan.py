"""``nomadd job plan [-diff=false] [-verbose] [-json] <path>`` (Nomad's command/job_plan.go).

Asks the servers what registering the job file would do (``PUT /v1/job/:id/plan``: the scheduler
runs on a snapshot, nothing is committed) and prints Nomad's output: the job diff with ``+``,
``-`` and ``+/-`` markers, each group's counts (``(2 create, 3 in-place update)``) and each changed
task's annotation, then the scheduler's dry run and the ``Job Modify Index`` with the
``nomadd job run -check-index`` command that submits the job only if nobody changed it since.

Exit codes are Nomad's: 0 no allocation would be created, stopped or replaced; 1 some would be;
255 error.
"""

from __future__ import annotations

import json
from typing import Any

from nomadd.api.jobs import Jobs
from nomadd.cli import meta
from nomadd.cli.job_file import JobFileError, load_job_file
from nomadd.cli.job_run import failure_lines
from nomadd.cli.job_validate import job_variables, variable_flags

__all__ = ["exit_code", "format_job_diff", "run"]

USAGE = "nomadd job plan [options] <path>"
EXIT_ERROR = 255
CHECK_INDEX_HELP = """To submit the job with version verification run:

nomadd job run -check-index {index} {args}{path}

When running the job with the check-index flag, the job will only be run if the
job modify index given matches the server-side version. If the index has
changed, another user has modified the job and the plan's results are
potentially invalid."""

Diff = dict[str, Any]


def exit_code(resp: Diff) -> int:
    """Nomad's getExitCode: 1 when allocations would be created, stopped or replaced."""
    if (resp.get("Diff") or {}).get("Type") == "None":
        return 0
    updates = ((resp.get("Annotations") or {}).get("DesiredTGUpdates")) or {}
    for d in updates.values():
        if sum(int(d.get(k, 0) or 0) for k in ("Stop", "Place", "Migrate", "DestructiveUpdate", "Canary")):
            return 1
    return 0


def _marker(kind: str) -> str:
    return {"Added": "+ ", "Deleted": "- ", "Edited": "+/- "}.get(kind, "")


def _longest(fields: list[Diff], objects: list[Diff]) -> tuple[int, int]:
    longest_field = max([len(f["Name"]) for f in fields] or [0])
    longest_marker = max([len(_marker(x["Type"])) for x in [*fields, *objects]] or [0])
    return longest_field, longest_marker


def _field(diff: Diff, start: int, key_prefix: int, value_prefix: int) -> str:
    out = f"{' ' * start}{_marker(diff['Type'])}{' ' * key_prefix}{diff['Name']}: {' ' * value_prefix}"
    old, new = json.dumps(diff.get("Old", "")), json.dumps(diff.get("New", ""))
    out += {"Added": new, "Deleted": old, "Edited": f"{old} => {new}"}.get(diff["Type"], new)
    if diff.get("Annotations"):
        out += f" ({', '.join(diff['Annotations'])})"
    return out


def _object(diff: Diff, start: int, key_prefix: int) -> str:
    marker = _marker(diff["Type"])
    out = f"{' ' * start}{marker}{' ' * key_prefix}{diff['Name']} {{\n"
    fields, objects = diff.get("Fields") or [], diff.get("Objects") or []
    longest_field, longest_marker = _longest(fields, objects)
    out += _aligned(fields, objects, start + key_prefix + 2, longest_field, longest_marker)
    return f"{out}\n{' ' * (start + len(marker) + key_prefix)}}}"


def _aligned(
    fields: list[Diff], objects: list[Diff], start: int, longest_field: int, longest_marker: int
) -> str:
    lines = [
        _field(f, start, longest_marker - len(_marker(f["Type"])), longest_field - len(f["Name"]))
        for f in fields
    ]
    lines += [_object(o, start, longest_marker - len(_marker(o["Type"]))) for o in objects]
    return "\n".join(lines)


def _task(task: Diff, start: int, task_prefix: int, verbose: bool) -> str:
    out = f"{' ' * start}{_marker(task['Type'])}{' ' * task_prefix}Task: {json.dumps(task['Name'])}"
    if task.get("Annotations"):
        out += f" ({', '.join(task['Annotations'])})"
    if task["Type"] == "None" or (task["Type"] in ("Added", "Deleted") and not verbose):
        return out
    fields, objects = task.get("Fields") or [], task.get("Objects") or []
    longest_field, longest_marker = _longest(fields, objects)
    return out + "\n" + _aligned(fields, objects, start + 2, longest_field, longest_marker)


def _group(tg: Diff, prefix: int, verbose: bool) -> str:
    out = f"{_marker(tg['Type'])}{' ' * prefix}Task Group: {json.dumps(tg['Name'])}"
    updates = tg.get("Updates") or {}
    if updates:
        out += " (" + ", ".join(f"{updates[k]} {k}" for k in sorted(updates)) + ")"
    out += "\n"
    fields, objects = tg.get("Fields") or [], tg.get("Objects") or []
    longest_field, longest_marker = _longest(fields, objects)
    tasks = tg.get("Tasks") or []
    longest_marker = max([longest_marker, *(len(_marker(t["Type"])) for t in tasks)])
    start = prefix + 2
    if tg["Type"] == "Edited" or verbose:
        block = _aligned(fields, objects, start, longest_field, longest_marker)
        if block:
            out += block + "\n"
    for t in tasks:
        out += _task(t, start, longest_marker - len(_marker(t["Type"])), verbose) + "\n"
    return out


def format_job_diff(job: Diff, verbose: bool = False) -> str:
    """Nomad's formatJobDiff, without colours."""
    out = f"{_marker(job['Type'])}Job: {json.dumps(job['ID'])}\n"
    fields, objects = job.get("Fields") or [], job.get("Objects") or []
    longest_field, longest_marker = _longest(fields, objects)
    groups = job.get("TaskGroups") or []
    longest_marker = max([longest_marker, *(len(_marker(g["Type"])) for g in groups)])
    if job["Type"] == "Edited" or verbose:
        block = _aligned(fields, objects, 0, longest_field, longest_marker)
        if block:
            out += block + "\n"
    for tg in groups:
        out += _group(tg, longest_marker - len(_marker(tg["Type"])), verbose) + "\n"
    return out


def format_dry_run(resp: Diff, job_type: str) -> str:
    failed = resp.get("FailedTGAllocs") or {}
    if not failed:
        return "- All tasks successfully allocated."
    noun = "allocations on all nodes" if job_type in ("system", "sysbatch") else "all allocations"
    lines = [f"- WARNING: Failed to place {noun}."]
    for group in sorted(failed):
        metric = failed[group]
        lines += failure_lines(group, metric, int(metric.get("CoalescedFailures", 0)) + 1)
    return "\n".join(lines)


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job plan")
    fs.bool("verbose", "Show the full diff, unchanged fields included.")
    fs.bool("json", "Print the plan response as JSON.")
    fs.bool("diff", "Show the job diff (default true; -diff=false leaves it out).")
    variable_flags(fs)
    parsed = meta.parse_one(fs, args, USAGE, "<path>")
    if parsed is None:
        return EXIT_ERROR
    opts, path = parsed
    try:
        job = load_job_file(path, *job_variables(opts))
    except JobFileError as err:
        meta.fail(f"Error getting job struct: Error parsing job file from {path}:\n{err}")
        return EXIT_ERROR
    try:
        resp, _ = Jobs(meta.api_client(opts)).plan(job, diff=True)
    except meta.APIError as err:
        meta.fail(f"Error during plan: {err}")
        return EXIT_ERROR
    if opts.get("json"):
        meta.print_json(resp)
        return exit_code(resp)
    verbose = bool(opts.get("verbose"))
    if opts.get("diff", True):
        print(
            format_job_diff(resp.get("Diff") or {"Type": "None", "ID": job.get("ID", "")}, verbose).strip()
            + "\n"
        )
    print("Scheduler dry-run:")
    print(format_dry_run(resp, str(job.get("Type") or "service")))
    print()
    if resp.get("Warnings"):
        print(f"Job Warnings:\n{resp['Warnings']}\n")
    namespace = f'-namespace="{opts["namespace"]}" ' if opts.get("namespace") else ""
    index = int(resp.get("JobModifyIndex") or 0)
    print(f"Job Modify Index: {index}")
    print(CHECK_INDEX_HELP.format(index=index, args=namespace, path=path))
    return exit_code(resp)

"""``nomadd job run [-detach] [-verbose] <file>`` (Nomad's command/job_run.go + monitor.go).

Reads the job file (API JSON, or HCL with the hcl extra; unknown keys are errors), registers it
and monitors the evaluation like Nomad::

    ==> Monitoring evaluation "1a2b3c4d"
        Evaluation triggered by job "web"
        Allocation "5e6f7a8b" created: node "9c0d1e2f", group "g"
        Evaluation status changed: "pending" -> "complete"
    ==> Evaluation "1a2b3c4d" finished with status "complete"

When the new version starts a deployment (a group with ``update {}``), the monitor then
follows it (``deployment.monitor_deployment``: per group desired, placed, healthy, unhealthy
and progress deadline) to its end.

Exit codes: 0 placed (and its deployment successful); 1 error (the agent's message is printed,
e.g. a 400 naming the bad field, or ``-check-index N`` refused because the job changed since the
plan that printed N) or a failed deployment; 2 some placements failed (``Placement Failure``
details, a blocked eval waits for capacity). ``-detach`` prints the evaluation ID without
monitoring.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from nomadd.api.evaluations import Evaluations
from nomadd.api.jobs import Jobs
from nomadd.cli import meta
from nomadd.cli.deployment import follow_deployment
from nomadd.cli.job_file import JobFileError, load_job_file
from nomadd.cli.job_status import short
from nomadd.cli.job_validate import job_variables, variable_flags

__all__ = ["failure_lines", "monitor", "run"]

USAGE = "nomadd job run [options] <path>"
ENFORCE_INDEX_PREFIX = "Enforcing job modify index"  # how the servers refuse a stale -check-index
MONITOR_POLL_WAIT = "2s"  # blocking-query wait per poll of the evaluation
MONITOR_TIMEOUT_S = 300.0  # give up monitoring (the job keeps being scheduled)
_TERMINAL = ("complete", "failed", "canceled")


def failure_lines(group: str, metric: dict[str, Any], queued: int) -> list[str]:
    lines = [f'    Task Group "{group}" (failed to place {queued} allocation{"s" if queued != 1 else ""}):']
    evaluated = int(metric.get("NodesEvaluated", 0))
    if evaluated == 0:
        lines.append("      * No nodes were eligible for evaluation")
    for dc, n in (metric.get("NodesAvailable") or {}).items():
        if n == 0:
            lines.append(f'      * No nodes are available in datacenter "{dc}"')
    for cls, n in (metric.get("ClassFiltered") or {}).items():
        lines.append(f'      * Class "{cls}": {n} nodes excluded by filter')
    for c, n in (metric.get("ConstraintFiltered") or {}).items():
        lines.append(f'      * Constraint "{c}": {n} nodes excluded by filter')
    exhausted = int(metric.get("NodesExhausted", 0))
    if exhausted:
        lines.append(f"      * Resources exhausted on {exhausted} nodes")
    for dim, n in (metric.get("DimensionExhausted") or {}).items():
        lines.append(f'      * Dimension "{dim}" exhausted on {n} nodes')
    return lines


def monitor(evals: Evaluations, eval_id: str, verbose: bool = False) -> int:
    """Follow ``eval_id`` to a terminal status, printing Nomad's monitor lines. Exit code."""
    print(f'==> Monitoring evaluation "{short(eval_id, verbose)}"')
    seen_allocs: set[str] = set()
    status = ""
    index = 0
    deadline = time.monotonic() + MONITOR_TIMEOUT_S
    ev: dict[str, Any] = {}
    while time.monotonic() < deadline:
        ev, qm = evals.info(eval_id, index=index, wait=MONITOR_POLL_WAIT)
        index = qm.index
        if not status:
            trigger = ev.get("TriggeredBy", "")
            if ev.get("JobID") and trigger.startswith("job"):
                print(f'    Evaluation triggered by job "{ev["JobID"]}"')
            elif ev.get("NodeID"):
                print(f'    Evaluation triggered by node "{short(ev["NodeID"], verbose)}"')
            status = "pending"
        allocs, _ = evals.allocations(eval_id)
        for a in sorted(allocs, key=lambda a: int(a.get("CreateIndex", 0))):
            if a["ID"] in seen_allocs:
                continue
            seen_allocs.add(a["ID"])
            node, group = short(a.get("NodeID"), verbose), a.get("TaskGroup", "")
            print(f'    Allocation "{short(a["ID"], verbose)}" created: node "{node}", group "{group}"')
        new_status = str(ev.get("Status", ""))
        if new_status != status:
            print(f'    Evaluation status changed: "{status}" -> "{new_status}"')
            status = new_status
        if status in _TERMINAL:
            break
    else:
        print(f'==> Monitoring of evaluation "{short(eval_id, verbose)}" timed out (status "{status}")')
        return 1
    failed = ev.get("FailedTGAllocs") or {}
    queued = ev.get("QueuedAllocations") or {}
    if status == "complete" and failed:
        print(
            f'==> Evaluation "{short(eval_id, verbose)}" finished with status "complete" but failed to '
            "place all allocations:"
        )
        for group, metric in sorted(failed.items()):
            for line in failure_lines(group, metric, int(queued.get(group, 1) or 1)):
                print(line)
        if ev.get("BlockedEval"):
            print(
                f'    Evaluation "{short(ev["BlockedEval"], verbose)}" waiting for additional capacity '
                "to place remainder"
            )
        return 2
    print(f'==> Evaluation "{short(eval_id, verbose)}" finished with status "{status}"')
    return 0 if status == "complete" else 2


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job run")
    fs.bool("detach", "Return immediately instead of monitoring the evaluation.")
    fs.bool("verbose", "Display full IDs.")
    fs.int("check-index", "Run only if the job's modify index is this one (0: only if it does not exist).")
    variable_flags(fs)
    parsed = meta.parse_one(fs, args, USAGE, "<path>")
    if parsed is None:
        return 1
    opts, arg = parsed
    try:
        job = load_job_file(arg, *job_variables(opts))
    except JobFileError as err:
        return meta.fail(f"Error parsing job file from {arg}:\n{err}")
    client = meta.api_client(opts)
    check_index = opts.get("check-index")
    try:
        reply, _ = Jobs(client).register(job, check_index if isinstance(check_index, int) else None)
    except meta.APIError as err:
        if err.message.startswith(ENFORCE_INDEX_PREFIX):  # -check-index refused: Nomad's two lines
            return meta.fail(f"{err.message}\nJob not updated")
        return meta.fail(f"Error submitting job: {err}")
    eval_id = str(reply.get("EvalID") or "")
    if opts.get("detach") or not eval_id:  # no evaluation: a periodic or parameterized job
        print("Job registration successful")
        if eval_id:
            print(f"Evaluation ID: {eval_id}")
        return 0
    verbose = bool(opts.get("verbose"))
    try:
        code = monitor(Evaluations(client), eval_id, verbose)
    except meta.APIError as err:
        print(f"Error reading evaluation: {err}", file=sys.stderr)
        return 1
    if code != 0:
        return code
    try:
        ev, _ = Evaluations(client).info(eval_id)
        return follow_deployment(
            client,
            str(job.get("ID", "")),
            int(reply.get("JobModifyIndex") or 0),
            verbose,
            str(ev.get("DeploymentID") or ""),
        )
    except meta.APIError as err:
        print(f"Error reading deployment: {err}", file=sys.stderr)
        return 1

"""``nomadd job status [-verbose] [<job>]`` (Nomad's command/job_status.go).

Without an ID: ``ID  Type  Priority  Status  Submit Date``. With one: the job's key/value block,
its ``Summary`` (per task group: Queued Starting Running Failed Complete Lost Unknown) and its
``Allocations`` (newest first). Also the formatting helpers other job/eval/alloc commands share.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from nomadd.api.deployments import Deployments
from nomadd.api.jobs import Jobs
from nomadd.cli import meta

__all__ = [
    "format_kv",
    "format_latest_deployment",
    "format_time_ns",
    "groups_table",
    "none",
    "run",
    "short",
    "time_ago",
]

USAGE = "nomadd job status [options] [<job>]"
SHORT_ID = 8


def short(value: object, verbose: bool = False) -> str:
    text = str(value or "")
    return text if verbose else text[:SHORT_ID]


def none(value: object) -> str:
    text = "" if value is None else str(value)
    return text or "<none>"


def format_kv(pairs: Sequence[tuple[str, object]]) -> str:
    """Nomad's formatKV: keys padded, ``key = value`` per line."""
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)} = {v}" for k, v in pairs)


def format_time_ns(ns: object) -> str:
    if not isinstance(ns, int) or ns <= 0:
        return "<none>"
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def time_ago(ns: object, now_ns: int | None = None) -> str:
    """``5s ago``, ``3m2s ago``, ``1h4m ago`` (Nomad's prettyTimeDiff, roughly)."""
    if not isinstance(ns, int) or ns <= 0:
        return "<none>"
    secs = max(0, int(((now_ns or time.time_ns()) - ns) / 1e9))
    if secs < 60:
        return f"{secs}s ago"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60}s ago"
    if secs < 86400:
        return f"{secs // 3600}h{secs % 3600 // 60}m ago"
    return f"{secs // 86400}d{secs % 86400 // 3600}h ago"


def _list(jobs: Jobs) -> int:
    found, _ = jobs.list()
    if not found:
        print("No running jobs")
        return 0
    rows = [["ID", "Type", "Priority", "Status", "Submit Date"]]
    for j in found:
        rows.append(
            [
                str(j["ID"]),
                str(j["Type"]),
                str(j["Priority"]),
                str(j["Status"]),
                format_time_ns(j.get("SubmitTime")),
            ]
        )
    print(meta.columnize(rows))
    return 0


def summary_table(summary: dict[str, Any]) -> str:
    rows = [["Task Group", "Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown"]]
    for group, s in sorted((summary.get("Summary") or {}).items()):
        rows.append(
            [group]
            + [
                str(s.get(k, 0))
                for k in ("Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown")
            ]
        )
    return meta.columnize(rows)


def allocs_table(allocs: list[dict[str, Any]], verbose: bool) -> str:
    rows = [["ID", "Node ID", "Task Group", "Version", "Desired", "Status", "Created", "Modified"]]
    for a in sorted(allocs, key=lambda a: -int(a.get("CreateIndex", 0))):
        rows.append(
            [
                short(a["ID"], verbose),
                short(a.get("NodeID"), verbose),
                str(a.get("TaskGroup", "")),
                str(a.get("JobVersion", 0)),
                str(a.get("DesiredStatus", "")),
                str(a.get("ClientStatus", "")),
                time_ago(a.get("CreateTime")),
                time_ago(a.get("ModifyTime")),
            ]
        )
    return meta.columnize(rows)


def groups_table(d: dict[str, Any]) -> str:
    rows = [["Task Group", "Desired", "Placed", "Healthy", "Unhealthy", "Progress Deadline"]]
    canaries = any(int(s.get("DesiredCanaries") or 0) for s in (d.get("TaskGroups") or {}).values())
    if canaries:
        rows[0][1:1] = ["Promoted", "Canaries"]
    for name, s in sorted((d.get("TaskGroups") or {}).items()):
        row = [
            name,
            str(s.get("DesiredTotal", 0)),
            str(s.get("PlacedAllocs", 0)),
            str(s.get("HealthyAllocs", 0)),
            str(s.get("UnhealthyAllocs", 0)),
            str(s.get("RequireProgressBy") or ""),
        ]
        if canaries:
            row[1:1] = [str(bool(s.get("Promoted"))).lower(), str(s.get("DesiredCanaries", 0))]
        rows.append(row)
    return meta.columnize(rows)


def format_latest_deployment(d: dict[str, Any], verbose: bool = False) -> str:
    """Nomad's ``Latest Deployment`` section body: ID, Status, Description, then ``Deployed``
    with the per-group table (Nomad's formatDeployment)."""
    base = format_kv(
        [
            ("ID", short(d.get("ID"), verbose)),
            ("Status", d.get("Status", "")),
            ("Description", d.get("StatusDescription", "")),
        ]
    )
    if not d.get("TaskGroups"):
        return base
    return f"{base}\n\nDeployed\n{groups_table(d)}"


def _resolve(jobs: Jobs, text: str) -> str | None:
    """The job ID itself, or the one job whose ID starts with ``text``; None when there is none,
    ``""`` when several match (their list is printed)."""
    found, _ = jobs.list(prefix=text)
    exact = [j for j in found if j["ID"] == text]
    if exact or len(found) == 1:
        return str((exact or found)[0]["ID"])
    if len(found) > 1:
        rows = [["ID", "Type", "Priority", "Status"]]
        rows += [[str(j["ID"]), str(j["Type"]), str(j["Priority"]), str(j["Status"])] for j in found]
        print(f"Prefix matched multiple jobs\n\n{meta.columnize(rows)}")
        return ""
    return None


def _one(jobs: Jobs, deployments: Deployments, text: str, verbose: bool) -> int:
    job_id = _resolve(jobs, text)
    if job_id is None:
        return meta.fail(f'No job(s) with prefix or ID "{text}" found')
    if not job_id:
        return 1
    job, _ = jobs.info(job_id)
    summary, _ = jobs.summary(job_id)
    allocs, _ = jobs.allocations(job_id)
    print(
        format_kv(
            [
                ("ID", job["ID"]),
                ("Name", job.get("Name", "")),
                ("Submit Date", format_time_ns(job.get("SubmitTime"))),
                ("Type", job.get("Type", "")),
                ("Priority", job.get("Priority", "")),
                ("Datacenters", ",".join(job.get("Datacenters") or [])),
                ("Namespace", job.get("Namespace", "")),
                ("Node Pool", job.get("NodePool", "")),
                ("Status", job.get("Status", "")),
                ("Periodic", str(bool(job.get("Periodic"))).lower()),
                ("Parameterized", str(bool(job.get("ParameterizedJob"))).lower()),
            ]
        )
    )
    print("\nSummary")
    print(summary_table(summary))
    print("\nAllocations")
    print(allocs_table(allocs, verbose) if allocs else "No allocations placed")
    latest, _ = deployments.latest_for_job(job_id)
    if latest:
        print("\nLatest Deployment")
        print(format_latest_deployment(latest, verbose))
    return 0


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job status")
    fs.bool("verbose", "Display full information (full IDs).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) > 1:
        return meta.fail(f"This command takes either no arguments or one: <job>\nUsage: {USAGE}")
    client = meta.api_client(opts)
    jobs = Jobs(client)
    try:
        if not rest:
            return _list(jobs)
        return _one(jobs, Deployments(client), rest[0], bool(opts.get("verbose")))
    except meta.APIError as err:
        if err.status == 404:
            return meta.fail(f'No job(s) with prefix or ID "{rest[0]}" found')
        return meta.fail(f"Error querying job: {err}")

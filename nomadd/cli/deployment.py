"""``nomadd deployment list|status|promote|fail|pause|resume`` (Nomad's command/deployment_*.go),
and :func:`monitor_deployment`, which ``job run`` uses to follow a deployment to its end::

    ==> Monitoring deployment "1a2b3c4d"
        Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline
        web         6        2       0        0          2026-12-03T17:20:00Z
        ...
    ==> Deployment "1a2b3c4d" successful

A table is printed each time a group's counters change. Exit codes: 0 successful; 1 failed or
cancelled (or an error); a deployment that waits for ``deployment promote`` ends the monitor
with 0 once its canaries are healthy, as Nomad's does.
"""

from __future__ import annotations

import time
from typing import Any

from nomadd.api.client import Client
from nomadd.api.deployments import Deployments
from nomadd.cli import meta
from nomadd.cli.job_status import format_kv, groups_table, short

__all__ = [
    "deployment_fail",
    "deployment_list",
    "deployment_pause",
    "deployment_promote",
    "deployment_resume",
    "deployment_status",
    "follow_deployment",
    "groups_table",
    "monitor_deployment",
]

MONITOR_WAIT = "1s"
MONITOR_TIMEOUT_S = 900.0
_TERMINAL = ("successful", "failed", "cancelled")


def _progress(d: dict[str, Any]) -> tuple[object, ...]:
    groups = d.get("TaskGroups") or {}
    return (
        d.get("Status"),
        tuple(
            (n, s.get("PlacedAllocs"), s.get("HealthyAllocs"), s.get("UnhealthyAllocs"), s.get("Promoted"))
            for n, s in sorted(groups.items())
        ),
    )


def _needs_promotion_and_ready(d: dict[str, Any]) -> bool:
    groups = (d.get("TaskGroups") or {}).values()
    waiting = [s for s in groups if int(s.get("DesiredCanaries") or 0) > 0 and not s.get("Promoted")]
    return bool(waiting) and all(
        int(s.get("HealthyAllocs") or 0) >= int(s["DesiredCanaries"]) for s in waiting
    )


def monitor_deployment(client: Client, deployment_id: str, verbose: bool = False) -> int:
    """Follow a deployment to its end, printing its groups' progress. Exit code."""
    api = Deployments(client)
    print(f'==> Monitoring deployment "{short(deployment_id, verbose)}"')
    index = 0
    last: tuple[object, ...] = ()
    deadline = time.monotonic() + MONITOR_TIMEOUT_S
    d: dict[str, Any] = {}
    while time.monotonic() < deadline:
        d, qm = api.info(deployment_id, index=index, wait=MONITOR_WAIT)
        index = qm.index
        progress = _progress(d)
        if progress != last:
            last = progress
            for line in groups_table(d).splitlines():
                print(f"    {line}")
        status = str(d.get("Status", ""))
        if status in _TERMINAL:
            break
        if _needs_promotion_and_ready(d):
            print(f'==> Deployment "{short(deployment_id, verbose)}" needs promotion: canaries are healthy')
            return 0
    else:
        print(f'==> Monitoring of deployment "{short(deployment_id, verbose)}" timed out')
        return 1
    status = str(d.get("Status", ""))
    description = d.get("StatusDescription", "")
    if status == "successful":
        print(f'==> Deployment "{short(deployment_id, verbose)}" successful')
        return 0
    print(f'==> Deployment "{short(deployment_id, verbose)}" {status}: {description}')
    return 1


def follow_deployment(
    client: Client, job_id: str, job_modify_index: int, verbose: bool = False, deployment_id: str = ""
) -> int:
    """After ``job run``'s evaluation: monitor the deployment of the registered version, if any:
    the evaluation's ``DeploymentID`` when it has one, else the job's latest deployment when it
    was made for this registration (its ``JobSpecModifyIndex``)."""
    if deployment_id:
        return monitor_deployment(client, deployment_id, verbose)
    d, _ = Deployments(client).latest_for_job(job_id)
    if not d or not job_modify_index or int(d.get("JobSpecModifyIndex") or 0) != job_modify_index:
        return 0
    return monitor_deployment(client, str(d["ID"]), verbose)


def _find(client: Client, text: str) -> dict[str, Any] | None:
    try:
        found, _ = Deployments(client).list(text)
    except meta.APIError as err:
        meta.fail(f"Error retrieving deployments: {err}")
        return None
    exact = [d for d in found if d.get("ID") == text]
    if exact or len(found) == 1:
        return (exact or found)[0]
    if not found:
        meta.fail(f"No deployment(s) with prefix or id {text!r} found")
    else:
        meta.fail(f"Prefix matched multiple deployments: {', '.join(short(d['ID']) for d in found)}")
    return None


def deployment_list(args: list[str]) -> int:
    fs = meta.new_flagset("deployment list")
    fs.bool("verbose", "Display full IDs.")
    fs.bool("json", "Output the deployments in JSON format.")
    parsed = meta.parse(fs, args, "nomadd deployment list [options]")
    if parsed is None:
        return 1
    opts, _ = parsed
    try:
        found, _ = Deployments(meta.api_client(opts)).list()
    except meta.APIError as err:
        return meta.fail(f"Error retrieving deployments: {err}")
    if opts.get("json"):
        meta.print_json(found)
        return 0
    if not found:
        print("No deployments found")
        return 0
    verbose = bool(opts.get("verbose"))
    rows = [["ID", "Job ID", "Job Version", "Status", "Description"]]
    for d in sorted(found, key=lambda d: -int(d.get("CreateIndex", 0))):
        rows.append(
            [
                short(d["ID"], verbose),
                str(d.get("JobID", "")),
                str(d.get("JobVersion", 0)),
                str(d.get("Status", "")),
                str(d.get("StatusDescription", "")),
            ]
        )
    print(meta.columnize(rows))
    return 0


def deployment_status(args: list[str]) -> int:
    fs = meta.new_flagset("deployment status")
    fs.bool("verbose", "Display full IDs.")
    fs.bool("json", "Output the deployment in JSON format.")
    fs.bool("monitor", "Follow the deployment until it ends.")
    parsed = meta.parse_one(fs, args, "nomadd deployment status [options] <deployment id>", "<deployment id>")
    if parsed is None:
        return 1
    opts, arg = parsed
    client = meta.api_client(opts)
    d = _find(client, arg)
    if d is None:
        return 1
    verbose = bool(opts.get("verbose"))
    if opts.get("monitor"):
        return monitor_deployment(client, d["ID"], verbose)
    if opts.get("json"):
        meta.print_json(d)
        return 0
    print(
        format_kv(
            [
                ("ID", short(d["ID"], verbose)),
                ("Job ID", d.get("JobID", "")),
                ("Job Version", d.get("JobVersion", 0)),
                ("Status", d.get("Status", "")),
                ("Description", d.get("StatusDescription", "")),
            ]
        )
    )
    print("\nDeployed")
    print(groups_table(d))
    return 0


def _write(name: str, args: list[str], usage: str, action: str) -> int:
    fs = meta.new_flagset(f"deployment {name}")
    fs.bool("verbose", "Display full IDs.")
    fs.bool("detach", "Return immediately instead of monitoring the deployment.")
    if name == "promote":
        fs.strings("group", "A task group to promote (repeatable; default: all).", placeholder="name")
    parsed = meta.parse_one(fs, args, usage, "<deployment id>")
    if parsed is None:
        return 1
    opts, arg = parsed
    client = meta.api_client(opts)
    d = _find(client, arg)
    if d is None:
        return 1
    api = Deployments(client)
    try:
        if name == "promote":
            groups = opts.get("group")
            reply, _ = api.promote(d["ID"], [str(g) for g in groups] if isinstance(groups, list) else ())
        elif name == "fail":
            reply, _ = api.fail(d["ID"])
        else:
            reply, _ = api.pause(d["ID"], name == "pause")
    except meta.APIError as err:
        return meta.fail(f"Error {action} deployment: {err}")
    verbose = bool(opts.get("verbose"))
    print(f'Deployment "{short(d["ID"], verbose)}" {action.replace("ing", "ed")}')
    if reply.get("RevertedJobVersion") is not None:
        print(f"Job reverted to version {reply['RevertedJobVersion']}")
    if name in ("promote", "resume") and not opts.get("detach"):
        return monitor_deployment(client, d["ID"], verbose)
    return 0


def deployment_promote(args: list[str]) -> int:
    return _write("promote", args, "nomadd deployment promote [options] <deployment id>", "promoting")


def deployment_fail(args: list[str]) -> int:
    return _write("fail", args, "nomadd deployment fail [options] <deployment id>", "failing")


def deployment_pause(args: list[str]) -> int:
    return _write("pause", args, "nomadd deployment pause [options] <deployment id>", "pausing")


def deployment_resume(args: list[str]) -> int:
    return _write("resume", args, "nomadd deployment resume [options] <deployment id>", "resuming")

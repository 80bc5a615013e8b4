"""``nomadd eval status [-verbose] <eval>`` (Nomad's command/eval_status.go): the evaluation's
key/value block and, when placements failed, the per-group failure details."""

from __future__ import annotations

from nomadd.api.evaluations import Evaluations
from nomadd.cli import meta
from nomadd.cli.job_run import failure_lines
from nomadd.cli.job_status import format_kv, format_time_ns, none, short

__all__ = ["run"]

USAGE = "nomadd eval status [options] <evaluation>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("eval status")
    fs.bool("verbose", "Display full IDs.")
    parsed = meta.parse_one(fs, args, USAGE, "<evaluation>")
    if parsed is None:
        return 1
    opts, arg = parsed
    verbose = bool(opts.get("verbose"))
    try:
        ev, _ = Evaluations(meta.api_client(opts)).info(arg)
    except meta.APIError as err:
        if err.status == 404:
            return meta.fail(f'No evaluation(s) with prefix or id "{arg}" found')
        return meta.fail(f"Error querying evaluation: {err}")
    failed = ev.get("FailedTGAllocs") or {}
    pairs: list[tuple[str, object]] = [
        ("ID", short(ev["ID"], verbose)),
        ("Create Time", format_time_ns(ev.get("CreateTime"))),
        ("Modify Time", format_time_ns(ev.get("ModifyTime"))),
        ("Status", ev.get("Status", "")),
        ("Status Description", none(ev.get("StatusDescription") or ev.get("Status"))),
        ("Type", ev.get("Type", "")),
        ("TriggeredBy", ev.get("TriggeredBy", "")),
        ("Job ID", ev.get("JobID", "")),
    ]
    if ev.get("NodeID"):
        pairs.append(("Node ID", short(ev["NodeID"], verbose)))
    pairs += [
        ("Namespace", ev.get("Namespace", "")),
        ("Priority", ev.get("Priority", "")),
        ("Placement Failures", "true" if failed else "false"),
    ]
    if ev.get("PreviousEval"):
        pairs.append(("Previous Eval", short(ev["PreviousEval"], verbose)))
    if ev.get("BlockedEval"):
        pairs.append(("Blocked Eval", short(ev["BlockedEval"], verbose)))
    print(format_kv(pairs))
    if failed:
        print("\n==> Failed Placements")
        queued = ev.get("QueuedAllocations") or {}
        for group, metric in sorted(failed.items()):
            for line in failure_lines(group, metric, int(queued.get(group, 1) or 1)):
                print(line)
    return 0

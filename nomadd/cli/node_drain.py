"""``nomadd node drain [-enable|-disable] [-deadline D|-force|-no-deadline] [-ignore-system]
[-keep-ineligible] [-detach] [-yes] <node>`` (Nomad's command/node_drain.go, without -monitor's
per-alloc lines).

``-enable`` sets a drain strategy (the node becomes ineligible and its allocations are migrated,
``migrate.max_parallel`` at a time, until the deadline; ``-force``: all at once) and waits until
the servers report the drain complete (``-detach``: return at once); ``-disable`` cancels it
and makes the node eligible again unless ``-keep-ineligible``.
"""

from __future__ import annotations

import time
from typing import Any, cast

from nomadd.api.client import Client
from nomadd.cli import meta
from nomadd.helper.duration import parse_duration_ns

__all__ = ["run"]

USAGE = "nomadd node drain [options] <node>"
MONITOR_TIMEOUT_S = 3600.0


def _duration_ns(text: str) -> int | None:
    if text == "-1":  # Nomad's "force": no deadline
        return -1
    try:
        ns = parse_duration_ns(text)
    except ValueError:
        return None
    return ns if ns >= 0 else None


def _resolve(client: Client, prefix: str) -> str | None:
    nodes, _ = client.get("/v1/nodes", {"prefix": prefix})
    found = cast(list[dict[str, Any]], nodes or [])
    exact = [n for n in found if n["ID"] == prefix]
    if exact or len(found) == 1:
        return str((exact or found)[0]["ID"])
    return None


def run(args: list[str]) -> int:
    fs = meta.new_flagset("node drain")
    fs.bool("enable", "Enable draining for the node.")
    fs.bool("disable", "Disable draining for the node.")
    fs.string("deadline", "How long to wait before forcing the drain (e.g. 1h; -1 = now; 0 = none).")
    fs.bool("force", "Stop every allocation at once, ignoring the jobs' migrate blocks (deadline -1).")
    fs.bool("no-deadline", "Never force the drain: wait for migrate blocks (and batch jobs) forever.")
    fs.bool("ignore-system", "Leave system jobs running on the node.")
    fs.bool("keep-ineligible", "With -disable: keep the node ineligible for scheduling.")
    fs.bool("detach", "Return immediately instead of waiting for the drain to complete.")
    fs.bool("yes", "Do not ask for confirmation (nomadd never asks).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    enable, disable = bool(opts.get("enable")), bool(opts.get("disable"))
    if enable == disable or len(rest) != 1:
        return meta.fail(
            f"Either the '-enable' or '-disable' flag must be set, with one <node>\nUsage: {USAGE}"
        )
    deadline = 60 * 60 * 10**9  # Nomad's default drain deadline: 1h
    if sum(1 for k in ("deadline", "force", "no-deadline") if opts.get(k)) > 1:
        return meta.fail("-deadline, -force and -no-deadline are mutually exclusive")
    if opts.get("force"):
        deadline = -1
    elif opts.get("no-deadline"):
        deadline = 0
    elif "deadline" in opts:
        parsed_deadline = _duration_ns(str(opts["deadline"]))
        if parsed_deadline is None:
            return meta.fail(f"Error parsing deadline: invalid duration {opts['deadline']!r}")
        deadline = parsed_deadline
    client = meta.api_client(opts)
    try:
        node_id = _resolve(client, rest[0])
        if node_id is None:
            return meta.fail(f'No node(s) with prefix or id "{rest[0]}" found')
        if disable:
            body = {"DrainSpec": None, "MarkEligible": not opts.get("keep-ineligible")}
            client.post(f"/v1/node/{node_id}/drain", body)
            print(f'Node "{node_id}" drain strategy unset')
            return 0
        spec = {"Deadline": deadline, "IgnoreSystemJobs": bool(opts.get("ignore-system"))}
        client.post(f"/v1/node/{node_id}/drain", {"DrainSpec": spec, "MarkEligible": False})
        print(f'Node "{node_id}" drain strategy set')
        if opts.get("detach"):
            return 0
        end = time.monotonic() + MONITOR_TIMEOUT_S
        index = 0
        while time.monotonic() < end:
            node, qm = client.get(f"/v1/node/{node_id}", {"index": index, "wait": "5s"})
            index = qm.index
            info = cast(dict[str, Any], node or {})
            if info.get("DrainStrategy") is None:
                status = (info.get("LastDrain") or {}).get("Status", "")
                if status == "complete":
                    print(f'==> Node "{node_id}" drain complete')
                    return 0
                print(f'==> Node "{node_id}" drain stopped (status "{status}")')
                return 1
        return meta.fail(f'==> Node "{node_id}" drain still running after {MONITOR_TIMEOUT_S:.0f}s')
    except meta.APIError as err:
        return meta.fail(f"Error updating drain specification: {err}")

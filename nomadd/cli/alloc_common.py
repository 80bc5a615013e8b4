"""What the ``alloc`` commands share: finding the allocation an ID prefix names."""

from __future__ import annotations

from typing import Any

from nomadd.api.allocations import Allocations
from nomadd.api.client import Client
from nomadd.cli import meta

__all__ = ["find_alloc", "group_tasks"]


def find_alloc(client: Client, prefix: str) -> dict[str, Any] | None:
    """The allocation ``prefix`` names; None after printing why there is none."""
    try:
        alloc, _ = Allocations(client).info(prefix)
    except meta.APIError as err:
        if err.status == 404:
            meta.fail(f'No allocation(s) with prefix or id "{prefix}" found')
        else:
            meta.fail(f"Error querying allocation: {err}")
        return None
    return alloc


def group_tasks(alloc: dict[str, Any]) -> list[str]:
    """The task names of the allocation's group."""
    job = alloc.get("Job") or {}
    for tg in job.get("TaskGroups") or []:
        if tg.get("Name") == alloc.get("TaskGroup"):
            return [t["Name"] for t in tg.get("Tasks") or []]
    return sorted(alloc.get("TaskStates") or {})


def alloc_and_task(
    opts: dict[str, object], rest: list[str], usage: str
) -> tuple[Client, dict[str, Any], str] | None:
    """``<allocation> [<task>]`` (or ``-task``) of ``alloc restart``/``alloc signal``: the API
    client, the allocation and the task name ("" for all); None when reported as not found."""
    if not 1 <= len(rest) <= 2:
        meta.fail(f"This command takes one or two arguments: <allocation> [<task>]\nUsage: {usage}")
        return None
    client = meta.api_client(opts)
    alloc = find_alloc(client, rest[0])
    if alloc is None:
        return None
    task = rest[1] if len(rest) == 2 else str(opts.get("task") or "")
    if task and task not in group_tasks(alloc):
        meta.fail(f'Could not find task named: "{task}"')
        return None
    return client, alloc, task

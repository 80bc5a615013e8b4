"""Size checks of a job against the configured limits (``[server.limits]``): on its API JSON
before conversion (:func:`check_api_sizes`), and the helpers :func:`nomadd.structs.job.validate_job`
uses on the struct."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from nomadd.structs.errors import ValidationError
from nomadd.structs.limits import DEFAULT_LIMITS, Limits

__all__ = ["MAX_REPORTED", "check_api_sizes", "check_length", "check_meta", "check_size"]

MAX_REPORTED = 20  # a message listing 10,000 problems helps nobody


def check_length(errs: list[str], path: str, value: str, limit: int, key: str) -> None:
    if len(value) > limit:
        errs.append(f"{path}: length {len(value)} exceeds the limit of {limit} ({key})")


def check_size(errs: list[str], path: str, items: Collection[object], limit: int, key: str) -> None:
    if len(items) > limit:
        errs.append(f"{path}: {len(items)} entries exceed the limit of {limit} ({key})")


def check_meta(errs: list[str], path: str, meta: Mapping[str, str], lim: Limits) -> None:
    check_size(errs, path, meta, lim.max_meta_entries, "max_meta_entries")
    for k, v in meta.items():
        check_length(errs, f"{path} key", k, lim.max_meta_key_length, "max_meta_key_length")
        check_length(errs, f"{path}[{k[:32]!r}]", v, lim.max_meta_value_length, "max_meta_value_length")


def check_api_sizes(raw: Mapping[str, object], lim: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a job's API JSON whose collections are over ``lim`` before converting it (the
    conversion of 2,000 task groups alone would hold the event loop for a quarter second).
    :func:`validate_job` checks the same sizes, and the rest, on the struct."""
    errs: list[str] = []

    def size(path: str, value: object, limit: int, key: str) -> None:
        if isinstance(value, list | dict):
            check_size(errs, path, value, limit, key)

    size("Job.Datacenters", raw.get("Datacenters"), lim.max_datacenters, "max_datacenters")
    size("Job.Constraints", raw.get("Constraints"), lim.max_constraints, "max_constraints")
    size("Job.Meta", raw.get("Meta"), lim.max_meta_entries, "max_meta_entries")
    groups = raw.get("TaskGroups")
    size("Job.TaskGroups", groups, lim.max_task_groups, "max_task_groups")
    if isinstance(groups, list) and len(groups) <= lim.max_task_groups:
        for i, tg in enumerate(groups):
            if isinstance(tg, dict):
                size(
                    f"Job.TaskGroups[{i}].Tasks",
                    tg.get("Tasks"),
                    lim.max_tasks_per_group,
                    "max_tasks_per_group",
                )
                size(f"Job.TaskGroups[{i}].Meta", tg.get("Meta"), lim.max_meta_entries, "max_meta_entries")
    if errs:
        raise ValidationError("; ".join(errs[:MAX_REPORTED]))

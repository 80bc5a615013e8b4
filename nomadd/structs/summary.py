"""Job summaries: allocation counts per task group (``GET /v1/job/:id/summary``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import field

from nomadd.structs.codec import api

__all__ = [
    "JobChildrenSummary",
    "JobSummary",
    "TaskGroupSummary",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskGroupSummary:
    queued: int = 0
    complete: int = 0
    failed: int = 0
    running: int = 0
    starting: int = 0
    lost: int = 0
    unknown: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobChildrenSummary:
    pending: int = 0
    running: int = 0
    dead: int = 0


# client status -> TaskGroupSummary field
_STATUS_FIELD = {
    "pending": "starting",
    "running": "running",
    "complete": "complete",
    "failed": "failed",
    "lost": "lost",
    "unknown": "unknown",
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JobSummary:
    job_id: str = field(default="", metadata=api("JobID"))
    namespace: str = "default"
    summary: Mapping[str, TaskGroupSummary] = field(default_factory=dict)
    children: JobChildrenSummary = field(default_factory=JobChildrenSummary)
    create_index: int = 0
    modify_index: int = 0

    @classmethod
    def compute(
        cls,
        *,
        job_id: str,
        namespace: str,
        groups: Iterable[str],
        allocs: Iterable[tuple[str, str]],
        queued: Mapping[str, int] | None = None,
    ) -> JobSummary:
        """Summary from ``(task_group, client_status)`` pairs of the job's allocations.

        ``queued`` is the latest eval's QueuedAllocations (placements that could not be made).
        """
        counts: dict[str, dict[str, int]] = {g: {} for g in groups}
        for group, status in allocs:
            name = _STATUS_FIELD.get(status)
            if name is None:
                continue
            row = counts.setdefault(group, {})
            row[name] = row.get(name, 0) + 1
        for group, n in (queued or {}).items():
            counts.setdefault(group, {})["queued"] = n
        return cls(
            job_id=job_id,
            namespace=namespace,
            summary={g: TaskGroupSummary(**row) for g, row in counts.items()},
        )

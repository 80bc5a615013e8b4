"""Bounds on what a caller may send: the ``[server.limits]`` config table (docs/configuration.md).

Every field has a documented default; :func:`nomadd.structs.job.validate_job` checks a job against
them and the HTTP edge checks the job body's size (``job_max_size``) before parsing it. Fixed
bounds that are not configurable (64-bit integers, resource maxima, priorities) live with the
structs they bound.
"""

from __future__ import annotations

import dataclasses

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    # Bytes of one job's JSON (Nomad's job_max_source_size, 1 MB by default).
    job_max_size: int = 1024 * 1024
    # A task group's Count: beyond this the register is refused (400). Counts that cannot be
    # placed cost nothing per allocation (failures are coalesced), so the default is generous.
    max_group_count: int = 1_000_000_000
    max_task_groups: int = 100
    max_tasks_per_group: int = 100
    max_datacenters: int = 100
    max_constraints: int = 100  # per job, per group and per task
    max_meta_entries: int = 256  # per job, per group and per task
    max_id_length: int = 256  # job IDs
    max_name_length: int = 256  # job, group and task names, datacenters, drivers
    max_meta_key_length: int = 256
    max_meta_value_length: int = 8192

    def problems(self) -> list[str]:
        """``key: must be positive`` for every field that is not."""
        return [
            f"{f.name}: must be positive, got {getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) <= 0
        ]


DEFAULT_LIMITS = Limits()

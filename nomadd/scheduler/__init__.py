"""Schedulers: turn an evaluation into a plan (pure; sees only ``State`` and ``Planner``).

``SCHEDULERS`` maps a job type (``Evaluation.type``) to its scheduler class; the server's
worker does ``SCHEDULERS[ev.type](snapshot, planner).process(ev)``.
"""

from __future__ import annotations

from nomadd.scheduler.generic import BatchScheduler, GenericScheduler, ServiceScheduler
from nomadd.scheduler.protocols import Planner, Scheduler, SchedulerFactory, State
from nomadd.scheduler.system import SysBatchScheduler, SystemScheduler

__all__ = [
    "SCHEDULERS",
    "BatchScheduler",
    "GenericScheduler",
    "Planner",
    "Scheduler",
    "SchedulerFactory",
    "ServiceScheduler",
    "State",
    "SysBatchScheduler",
    "SystemScheduler",
]

SCHEDULERS: dict[str, SchedulerFactory] = {
    "service": ServiceScheduler,
    "batch": BatchScheduler,
    "system": SystemScheduler,
    "sysbatch": SysBatchScheduler,
}

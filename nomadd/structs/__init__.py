"""The data model shared by servers, clients and the scheduler, and its codec.

Every struct is a ``@dataclass(frozen=True, slots=True, kw_only=True)``; change one with
``dataclasses.replace``. Wire shapes (msgpack snake_case, API PascalCase) live in ``codec``.
``messages`` (Raft message types and requests) is imported from its own module.
"""

from __future__ import annotations

from nomadd.structs.alloc import (
    Allocation,
    AllocClientStatus,
    AllocDesiredStatus,
    AllocListStub,
    AllocMetric,
    DesiredTransition,
    RescheduleEvent,
    RescheduleTracker,
    TaskEvent,
    TaskState,
    TaskStatus,
    alloc_name,
)
from nomadd.structs.codec import api, from_api, from_wire, pack, to_api, to_wire, unpack
from nomadd.structs.constraint import Constraint, ConstraintOperand
from nomadd.structs.eval import CORE_JOB_TYPE, EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.funcs import allocs_fit, evaluate_node_plan
from nomadd.structs.job import Job, JobListStub, JobStatus, JobType, LogConfig, Task, TaskGroup
from nomadd.structs.node import (
    DrainMetadata,
    DrainStatus,
    DrainStrategy,
    DriverInfo,
    Node,
    NodeCpuResources,
    NodeDiskResources,
    NodeEligibility,
    NodeEvent,
    NodeListStub,
    NodeMemoryResources,
    NodeReservedCpuResources,
    NodeReservedNetworkResources,
    NodeReservedResources,
    NodeResources,
    NodeStatus,
    computed_class,
)
from nomadd.structs.plan import Plan, PlanResult
from nomadd.structs.policy import (
    ReschedulePolicy,
    RestartMode,
    RestartPolicy,
    UpdateStrategy,
    default_reschedule_policy,
    default_restart_policy,
)
from nomadd.structs.resources import (
    AllocatedCpuResources,
    AllocatedMemoryResources,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    EphemeralDisk,
    Resources,
)
from nomadd.structs.summary import JobChildrenSummary, JobSummary, TaskGroupSummary
from nomadd.structs.timeutil import format_time, parse_time

__all__ = [
    "CORE_JOB_TYPE",
    "AllocClientStatus",
    "AllocDesiredStatus",
    "AllocListStub",
    "AllocMetric",
    "AllocatedCpuResources",
    "AllocatedMemoryResources",
    "AllocatedResources",
    "AllocatedSharedResources",
    "AllocatedTaskResources",
    "Allocation",
    "Constraint",
    "ConstraintOperand",
    "DesiredTransition",
    "DrainMetadata",
    "DrainStatus",
    "DrainStrategy",
    "DriverInfo",
    "EphemeralDisk",
    "EvalStatus",
    "EvalTrigger",
    "Evaluation",
    "Job",
    "JobChildrenSummary",
    "JobListStub",
    "JobStatus",
    "JobSummary",
    "JobType",
    "LogConfig",
    "Node",
    "NodeCpuResources",
    "NodeDiskResources",
    "NodeEligibility",
    "NodeEvent",
    "NodeListStub",
    "NodeMemoryResources",
    "NodeReservedCpuResources",
    "NodeReservedNetworkResources",
    "NodeReservedResources",
    "NodeResources",
    "NodeStatus",
    "Plan",
    "PlanResult",
    "RescheduleEvent",
    "ReschedulePolicy",
    "RescheduleTracker",
    "Resources",
    "RestartMode",
    "RestartPolicy",
    "Task",
    "TaskEvent",
    "TaskGroup",
    "TaskGroupSummary",
    "TaskState",
    "TaskStatus",
    "UpdateStrategy",
    "alloc_name",
    "allocs_fit",
    "api",
    "computed_class",
    "default_reschedule_policy",
    "default_restart_policy",
    "evaluate_node_plan",
    "format_time",
    "from_api",
    "from_wire",
    "pack",
    "parse_time",
    "to_api",
    "to_wire",
    "unpack",
]

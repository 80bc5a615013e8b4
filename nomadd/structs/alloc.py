"""Allocations: one task group instance placed on a node, and its tasks' states."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import field
from enum import StrEnum
from typing import ClassVar, TypeVar

from nomadd.structs.codec import api
from nomadd.structs.codec_diff import OverReader, replacer
from nomadd.structs.deployment import AllocDeploymentStatus
from nomadd.structs.job import Job
from nomadd.structs.resources import AllocatedResources
from nomadd.structs.timeutil import ZERO_TIME

__all__ = [
    "AllocClientStatus",
    "AllocDesiredStatus",
    "AllocListStub",
    "AllocMetric",
    "Allocation",
    "DesiredTransition",
    "RescheduleEvent",
    "RescheduleTracker",
    "TaskEvent",
    "TaskState",
    "TaskStatus",
    "alloc_name",
    "compact_alloc",
    "compact_counts",
    "compact_metric",
    "compact_scores_of",
    "stored_over",
    "stored_placement",
]


class AllocDesiredStatus(StrEnum):
    RUN = "run"
    STOP = "stop"
    EVICT = "evict"


class AllocClientStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    LOST = "lost"
    UNKNOWN = "unknown"


_CLIENT_TERMINAL = frozenset({AllocClientStatus.COMPLETE, AllocClientStatus.FAILED, AllocClientStatus.LOST})


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DEAD = "dead"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent:
    """One event of a task (``Type`` e.g. "Received", "Started", "Terminated", "Restarting")."""

    # Nomad's api.TaskEvent keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "SetupError": "",
        "DriverMessage": "",
        "KillError": "",
        "DownloadError": "",
        "ValidationError": "",
        "DiskLimit": 0,
        "FailedSibling": "",
        "VaultError": "",
        "TaskSignalReason": "",
        "TaskSignal": "",
        "GenericSource": "",
    }

    type: str = ""
    time: int = 0  # Unix ns
    message: str = ""
    display_message: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    exit_code: int = 0
    signal: int = 0
    fails_task: bool = False
    restart_reason: str = ""
    driver_error: str = ""
    kill_reason: str = ""
    kill_timeout: int = 0  # ns
    start_delay: int = 0  # ns


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskState:
    state: TaskStatus = TaskStatus.PENDING
    failed: bool = False
    restarts: int = 0
    last_restart: str = ZERO_TIME  # RFC 3339; Go's zero time when unset, as Nomad sends it
    started_at: str = ZERO_TIME  # RFC 3339; Go's zero time when unset, as Nomad sends it
    finished_at: str = ZERO_TIME  # RFC 3339; Go's zero time when unset, as Nomad sends it
    events: tuple[TaskEvent, ...] = ()

    def successful(self) -> bool:
        return self.state == TaskStatus.DEAD and not self.failed


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DesiredTransition:
    """Server-set hints for the scheduler (Nomad uses *bool; unset is False here)."""

    # Nomad's api.DesiredTransition keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {"NoShutdownDelay": None, "MigrateDisablePlacement": None}

    migrate: bool = False
    reschedule: bool = False
    force_reschedule: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RescheduleEvent:
    reschedule_time: int = 0  # Unix ns
    prev_alloc_id: str = field(default="", metadata=api("PrevAllocID"))
    prev_node_id: str = field(default="", metadata=api("PrevNodeID"))
    delay: int = 0  # ns


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RescheduleTracker:
    events: tuple[RescheduleEvent, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocMetric:
    """How the scheduler got to a placement (or why it failed: ``FailedTGAllocs`` values)."""

    # Nomad's api.AllocationMetric keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "NodePool": "",
        "ResourcesExhausted": None,
        "ScoreMetaData": None,
    }

    nodes_evaluated: int = 0
    nodes_filtered: int = 0
    nodes_in_pool: int = 0
    nodes_available: Mapping[str, int] = field(default_factory=dict)  # per datacenter
    class_filtered: Mapping[str, int] = field(default_factory=dict)
    constraint_filtered: Mapping[str, int] = field(default_factory=dict)
    nodes_exhausted: int = 0
    class_exhausted: Mapping[str, int] = field(default_factory=dict)
    dimension_exhausted: Mapping[str, int] = field(default_factory=dict)
    quota_exhausted: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict)  # "<node>.binpack" -> score
    allocation_time: int = 0  # ns
    coalesced_failures: int = 0


def alloc_name(job_id: str, group: str, index: int) -> str:
    """Nomad's allocation name: ``<job>.<group>[<index>]``."""
    return f"{job_id}.{group}[{index}]"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AllocListStub:
    """One row of ``GET /v1/allocations`` and ``/v1/job/:id/allocations``."""

    # Nomad's api.AllocationListStub keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {"PreemptedByAllocation": ""}

    id: str = ""
    eval_id: str = ""
    name: str = ""
    namespace: str = "default"
    node_id: str = ""
    node_name: str = ""
    job_id: str = ""
    job_type: str = ""
    job_version: int = 0
    task_group: str = ""
    desired_status: AllocDesiredStatus = AllocDesiredStatus.RUN
    desired_description: str = ""
    client_status: AllocClientStatus = AllocClientStatus.PENDING
    client_description: str = ""
    desired_transition: DesiredTransition = field(default_factory=DesiredTransition)
    task_states: Mapping[str, TaskState] = field(default_factory=dict)
    deployment_status: AllocDeploymentStatus | None = None
    follow_up_eval_id: str = field(default="", metadata=api("FollowupEvalID"))
    next_allocation: str = ""
    reschedule_tracker: RescheduleTracker | None = None
    preempted_allocations: tuple[str, ...] = ()
    allocated_resources: AllocatedResources | None = None  # only when listed with ?resources=true
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0
    modify_time: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """An allocation. ``job`` may be None inside a Plan (the plan carries the job once)."""

    # Nomad's api.Allocation keys nomadd has no field for, sent at their zero value (codec.to_api)
    NOMAD_ONLY: ClassVar[Mapping[str, object]] = {
        "Resources": None,
        "TaskResources": None,
        "NetworkStatus": None,
        "PreemptedByAllocation": "",
    }

    id: str = ""
    namespace: str = "default"
    eval_id: str = ""
    name: str = ""
    node_id: str = ""
    node_name: str = ""
    job_id: str = ""
    job: Job | None = None
    job_type: str = ""
    job_version: int = 0
    task_group: str = ""
    allocated_resources: AllocatedResources = field(default_factory=AllocatedResources)
    desired_status: AllocDesiredStatus = AllocDesiredStatus.RUN
    desired_description: str = ""
    desired_transition: DesiredTransition = field(default_factory=DesiredTransition)
    client_status: AllocClientStatus = AllocClientStatus.PENDING
    client_description: str = ""
    task_states: Mapping[str, TaskState] = field(default_factory=dict)
    previous_allocation: str = ""
    next_allocation: str = ""
    reschedule_tracker: RescheduleTracker | None = None
    follow_up_eval_id: str = field(default="", metadata=api("FollowupEvalID"))
    preempted_allocations: tuple[str, ...] = ()
    metrics: AllocMetric | None = None
    deployment_id: str = ""
    deployment_status: AllocDeploymentStatus | None = None
    create_index: int = 0
    modify_index: int = 0
    alloc_modify_index: int = 0
    create_time: int = 0  # Unix ns
    modify_time: int = 0  # Unix ns

    # ---- status predicates (Nomad's TerminalStatus & co.)

    def server_terminal(self) -> bool:
        """The servers want it stopped (desired stop or evict)."""
        return self.desired_status != AllocDesiredStatus.RUN

    def client_terminal(self) -> bool:
        """The client reports it finished: complete, failed or lost."""
        return self.client_status in _CLIENT_TERMINAL

    def terminal(self) -> bool:
        return self.desired_status != AllocDesiredStatus.RUN or self.client_status in _CLIENT_TERMINAL

    def ran_successfully(self) -> bool:
        """Every task finished without failing (a completed batch alloc is not replaced)."""
        if self.client_status == AllocClientStatus.COMPLETE:
            return True
        return bool(self.task_states) and all(s.successful() for s in self.task_states.values())

    def index(self) -> int:
        """The ``[n]`` of the allocation's name (-1 when the name has none)."""
        start = self.name.rfind("[")
        if start < 0 or not self.name.endswith("]"):
            return -1
        try:
            return int(self.name[start + 1 : -1])
        except ValueError:
            return -1

    def comparable_resources(self) -> tuple[int, int, int]:
        return self.allocated_resources.comparable()

    def stub(self, *, resources: bool = False) -> AllocListStub:
        return AllocListStub(
            allocated_resources=self.allocated_resources if resources else None,
            id=self.id,
            eval_id=self.eval_id,
            name=self.name,
            namespace=self.namespace,
            node_id=self.node_id,
            node_name=self.node_name,
            job_id=self.job_id,
            job_type=self.job_type or (str(self.job.type) if self.job else ""),
            job_version=self.job_version,
            task_group=self.task_group,
            desired_status=self.desired_status,
            desired_description=self.desired_description,
            client_status=self.client_status,
            client_description=self.client_description,
            desired_transition=self.desired_transition,
            task_states=self.task_states,
            follow_up_eval_id=self.follow_up_eval_id,
            deployment_status=self.deployment_status,
            next_allocation=self.next_allocation,
            reschedule_tracker=self.reschedule_tracker,
            preempted_allocations=self.preempted_allocations,
            create_index=self.create_index,
            modify_index=self.modify_index,
            create_time=self.create_time,
            modify_time=self.modify_time,
        )


# ---- compact stored form (a server holds a million of these) -----------------------------------

_V = TypeVar("_V")
_EMPTY: Mapping[str, object] = {}  # one shared empty map: stored structs never mutate their maps


def _intern(s: str) -> str:
    """``sys.intern(s)``; a str subclass (an enum member) is kept as it is (intern refuses it)."""
    return sys.intern(s) if type(s) is str else s


_MAX_SHARED = 8192  # values kept by _share; it starts over when full
_shared: dict[object, object] = {}


def _share(key: object, value: _V) -> _V:
    """The value stored before under ``key``, else ``value`` (kept for the next): the numbers
    and counts of a metric repeat across allocations (nodes equally full score the same, every
    placement of a run sees the same pool)."""
    got = _shared.get(key)
    if got is None:
        if len(_shared) >= _MAX_SHARED:
            _shared.clear()
        _shared[key] = got = value
    return got  # type: ignore[return-value]


def _compact_map(m: Mapping[str, int]) -> Mapping[str, int]:
    """The shared empty map, or an equal map of counts shared with other metrics."""
    if not m:
        return _EMPTY  # type: ignore[return-value]
    key = (dict, *m.items())
    got = _shared.get(key)  # looked up first: the copy is made only for a new map
    return got if got is not None else _share(key, dict(m))  # type: ignore[return-value]


def _number(v: float) -> float:
    if v == 0 or v != v:  # keeps -0.0 and NaN as they are
        return v
    return _share((type(v), v), v)  # typed: 1 and 1.0 are equal keys


_floats: dict[float, float] = {}  # score -> the float object stored for it (non-zero floats only)


def _compact_scores(scores: Mapping[str, float]) -> Mapping[str, float]:
    """``scores`` with interned keys and shared values (:func:`compact_metric`). Runs for every
    score of every stored allocation (a placement has one per node scored), hence one plain loop
    without calls for the usual exact non-zero float: it goes through one dict, other values
    (zero, NaN, an int) through :func:`_number`."""
    if not scores:
        return _EMPTY  # type: ignore[return-value]
    floats = _floats
    if len(floats) >= _MAX_SHARED:
        floats.clear()
    intern = sys.intern
    out = {}
    try:
        for k, v in scores.items():
            out[intern(k)] = floats.setdefault(v, v) if type(v) is float and v and v == v else _number(v)
    except TypeError:  # a key of a str subclass (intern refuses it): kept as it is
        return {_intern(k): _number(v) for k, v in scores.items()}
    return out


compact_counts = _compact_map  # a metric's map of counts, as compact_metric stores it


def compact_scores_of(keys: list[str], values: list[float]) -> Mapping[str, float]:
    """:func:`_compact_scores` of the map ``zip(keys, values)`` whose keys are interned already
    (a version 4 dump's, read once each: ``store_runs.StringsIn``); ValueError if the two
    lengths differ."""
    if len(keys) != len(values):
        raise ValueError(f"state dump has {len(keys)} score keys for {len(values)} scores")
    if not keys:
        return _EMPTY  # type: ignore[return-value]
    floats = _floats
    if len(floats) >= _MAX_SHARED:
        floats.clear()
    return {
        k: floats.setdefault(v, v) if type(v) is float and v and v == v else _number(v)
        for k, v in zip(keys, values, strict=True)
    }


def compact_metric(m: AllocMetric) -> AllocMetric:
    """``m`` with its maps of counts shared (empty or equal to another metric's), its score keys
    (``<node ID>.<scorer>``, the same few per node across every allocation) interned and its
    numbers shared (:func:`_share`): an equal metric in a third of the bytes."""
    return _metric_replace(
        m,
        _number(m.nodes_in_pool),
        _compact_map(m.nodes_available),
        _compact_map(m.class_filtered),
        _compact_map(m.constraint_filtered),
        _compact_map(m.class_exhausted),
        _compact_map(m.dimension_exhausted),
        _compact_scores(m.scores),
    )


_last_resources: tuple[AllocatedResources, AllocatedResources] | None = None


def _shared_resources(res: AllocatedResources) -> AllocatedResources:
    """An equal :class:`AllocatedResources` stored before (jobs of equal asks place equal
    resources; a plan's placements share one object already: the last one is remembered)."""
    global _last_resources
    last = _last_resources
    if last is not None and last[0] is res:
        return last[1]
    key = (AllocatedResources, *res.tasks.items(), res.shared)
    try:
        hash(key)
    except TypeError:  # a free-form value (a network's DNS block): kept as it is
        return res
    out = _share(key, res)
    _last_resources = (res, out)
    return out


def compact_alloc(a: Allocation) -> Allocation:
    """``a`` as a server stores it: the strings many allocations repeat (namespace, job, group,
    node, eval, job type) interned, empty maps and equal resources shared, the metric compacted
    (:func:`compact_metric`). Equal to ``a`` field by field; what the API returns is unchanged."""
    return stored_placement(a, a.job, a.create_index, a.modify_index, a.alloc_modify_index)


def stored_placement(
    a: Allocation, job: Job | None, create_index: int, modify_index: int, alloc_modify_index: int
) -> Allocation:
    """:func:`compact_alloc` of ``a`` with its job and indexes set, in one copy (the FSM stores
    each new placement so)."""
    metrics = a.metrics
    if metrics is not None:
        metrics = compact_metric(metrics)
    strings: tuple[str, ...] = (
        a.namespace,
        a.eval_id,
        a.node_id,
        a.node_name,
        a.job_id,
        a.job_type,
        a.task_group,
    )
    try:
        strings = tuple(map(sys.intern, strings))  # in C: this runs for every allocation stored
    except TypeError:  # a str subclass (an enum member) is kept as it is
        strings = tuple(map(_intern, strings))
    return _alloc_replace(
        a,
        *strings,
        job,
        _shared_resources(a.allocated_resources),
        a.task_states or _EMPTY,
        metrics,
        create_index,
        modify_index,
        alloc_modify_index,
    )


_metric_replace = replacer(
    AllocMetric,
    "nodes_in_pool",
    "nodes_available",
    "class_filtered",
    "constraint_filtered",
    "class_exhausted",
    "dimension_exhausted",
    "scores",
)
_alloc_replace = replacer(
    Allocation,
    "namespace",
    "eval_id",
    "node_id",
    "node_name",
    "job_id",
    "job_type",
    "task_group",
    "job",
    "allocated_resources",
    "task_states",
    "metrics",
    "create_index",
    "modify_index",
    "alloc_modify_index",
)


def _or_empty(m: Mapping[str, object]) -> Mapping[str, object]:
    return m or _EMPTY


# what compact_alloc does to each field, field by field (stored_over: only to the fields read)
_STORED_FIELDS = ("id", "namespace", "eval_id", "node_id", "node_name", "job_id", "job_type", "task_group")
_stored_reader = OverReader(
    {
        Allocation: {
            **dict.fromkeys(_STORED_FIELDS, sys.intern),  # read from a dump: exact str, never a subclass
            "allocated_resources": _shared_resources,
            "task_states": _or_empty,
            "metrics": compact_metric,
        },
        AllocMetric: {
            "nodes_in_pool": _number,
            **dict.fromkeys(
                (
                    "nodes_available",
                    "class_filtered",
                    "constraint_filtered",
                    "class_exhausted",
                    "dimension_exhausted",
                ),
                _compact_map,
            ),
            "scores": _compact_scores,
        },
    }
)


def stored_over(diff: Mapping[str, object], prev: Allocation) -> Allocation:
    """``compact_alloc(from_wire_over(Allocation, diff, prev))`` (its ID interned too) for a
    ``prev`` stored compact, in one copy of the allocation and of its metric: only the fields
    in ``diff`` are read and compacted, the others are ``prev``'s. A restore decodes each
    allocation so, over the one before (docs/contributing/raft.md): compacting the whole copy
    after reading it was two copies of each, and half of a restore's CPU."""
    return _stored_reader.read(Allocation, diff, prev)

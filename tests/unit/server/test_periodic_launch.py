"""The periodic launch rules in the FSM (a launch is applied once, whichever leader proposed
it), the leader's catch-up decision, prohibit_overlap's running-children test, dispatch
idempotency, and the payload file the client writes."""

from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path

import pytest

from nomadd.client.dispatch_payload import write_dispatch_payload
from nomadd.server.alloc_endpoint import new_eval
from nomadd.server.dispatch_endpoint import dispatched_id
from nomadd.server.fsm import FSM
from nomadd.server.fsm.periodic import find_idempotent_child
from nomadd.server.periodic_dispatch import derive_child, missed_launch, running_children
from nomadd.server.state import store_jobs, store_periodic
from nomadd.server.state.store import StateStore
from nomadd.server.state.store_evals import ApplyResult
from nomadd.structs.codec import pack
from nomadd.structs.errors import DriverError
from nomadd.structs.eval import EvalStatus, EvalTrigger, Evaluation
from nomadd.structs.job import Job, JobType, Task, TaskGroup
from nomadd.structs.messages import MessageType
from nomadd.structs.periodic import DispatchPayloadConfig, PeriodicConfig, PeriodicLaunch
from nomadd.structs.requests.job import JobDeregisterEntry, JobRegisterEntry
from nomadd.structs.requests.periodic import PeriodicLaunchEntry
from nomadd.structs.resources import Resources
from tests.unit.server.fakes import make_fsm

NS = 1_000_000_000
T0 = 1_800_000_000 * NS  # a whole second


def periodic_job(spec: str = "*/2 * * * * * *", **kw: object) -> Job:
    task = Task(name="t", driver="raw_exec", resources=Resources(cpu=100, memory_mb=64))
    return Job(
        id="tick",
        type=JobType.BATCH,
        datacenters=("dc1",),
        task_groups=(TaskGroup(name="g", tasks=(task,)),),
        periodic=PeriodicConfig(spec=spec),
        **kw,  # type: ignore[arg-type]
    ).canonicalize()


def ev_for(job: Job) -> Evaluation:
    return new_eval(
        job_id=job.id,
        namespace=job.namespace,
        job_type=str(job.type),
        priority=job.priority,
        trigger=EvalTrigger.PERIODIC_JOB,
        now_ns=T0,
    )


def register(fsm: FSM, index: int, job: Job, submit: int = T0) -> object:
    return fsm.apply(
        index, MessageType.JOB_REGISTER, pack(JobRegisterEntry(job=job, eval=None, submit_time=submit))
    )


def launch(fsm: FSM, index: int, parent: Job, at: int, force: bool = False) -> ApplyResult:
    child = derive_child(parent, at)
    entry = PeriodicLaunchEntry(job=child, eval=ev_for(child), launch=at, force=force, submit_time=at)
    result = fsm.apply(index, MessageType.PERIODIC_LAUNCH, pack(entry))
    assert isinstance(result, ApplyResult)
    return result


def test_register_records_the_insertion_time_and_purge_forgets_it() -> None:
    fsm = make_fsm()
    register(fsm, 2, periodic_job())
    row = store_periodic.get_launch(fsm.store.snapshot(), "default", "tick")
    assert row is not None and row.launch == T0 and row.create_index == 2
    register(fsm, 3, periodic_job(meta={"v": "2"}), submit=T0 + 50 * NS)  # an update keeps it
    assert store_periodic.get_launch(fsm.store.snapshot(), "default", "tick") == row
    entry = JobDeregisterEntry(namespace="default", job_id="tick", purge=True, submit_time=T0)
    fsm.apply(4, MessageType.JOB_DEREGISTER, pack(entry))
    assert store_periodic.get_launch(fsm.store.snapshot(), "default", "tick") is None


def test_a_launch_is_applied_once_whichever_leader_proposes_it() -> None:
    fsm = make_fsm()
    parent = periodic_job()
    register(fsm, 2, parent)
    first = launch(fsm, 3, parent, T0 + 2 * NS)
    assert first.found and len(first.evals) == 1
    child_id = f"tick/periodic-{T0 // NS + 2}"
    snap = fsm.store.snapshot()
    child = store_jobs.get_job(snap, "default", child_id)
    assert child is not None and child.parent_id == "tick" and child.periodic is None
    assert store_periodic.get_launch(snap, "default", "tick").launch == T0 + 2 * NS  # type: ignore[union-attr]
    # the same launch again (a new leader that lost track of it): refused, nothing written
    again = launch(fsm, 4, parent, T0 + 2 * NS)
    assert not again.found and again.evals == ()
    # an earlier time than the recorded one (a new leader whose clock is behind): refused
    assert not launch(fsm, 5, parent, T0 + 1 * NS).found
    assert fsm.store.snapshot().table_index(store_jobs.TABLE) == 3
    # the next one is fine; a forced launch of a new second too
    assert launch(fsm, 6, parent, T0 + 4 * NS).found
    assert launch(fsm, 7, parent, T0 + 3 * NS, force=True).found
    row = store_periodic.get_launch(fsm.store.snapshot(), "default", "tick")
    assert row is not None and row.launch == T0 + 4 * NS  # a force never moves it back


def test_no_launch_for_a_stopped_or_missing_parent() -> None:
    fsm = make_fsm()
    parent = periodic_job()
    assert not launch(fsm, 2, parent, T0).found
    register(fsm, 3, dataclasses.replace(parent, stop=True))
    assert not launch(fsm, 4, parent, T0 + 2 * NS).found


def test_missed_launch_is_made_up_once_not_replayed() -> None:
    job = dataclasses.replace(periodic_job(), submit_time=T0)
    row = PeriodicLaunch(id="tick", launch=T0 + 10 * NS)
    assert missed_launch(job, row, T0 + 11 * NS) is None  # next is T0+12: not missed
    assert missed_launch(job, row, T0 + 12 * NS + 1) == T0 + 12 * NS
    assert missed_launch(job, row, T0 + 100 * NS) == T0 + 12 * NS  # one catch-up, at now
    assert missed_launch(job, None, T0 + 1 * NS) is None  # from the insertion time
    assert missed_launch(job, None, T0 + 3 * NS) == T0 + 2 * NS


def _finish(fsm: FSM, index: int, job_id: str) -> None:
    from nomadd.structs.requests.eval import EvalUpdateEntry

    snap = fsm.store.snapshot()
    from nomadd.server.state import store_evals

    done = [
        dataclasses.replace(e, status=EvalStatus.COMPLETE)
        for e in store_evals.evals_by_job(snap, "default", job_id)
    ]
    fsm.apply(index, MessageType.EVAL_UPDATE, pack(EvalUpdateEntry(evals=tuple(done))))


def test_prohibit_overlap_sees_a_child_still_pending() -> None:
    fsm = make_fsm()
    parent = periodic_job()
    register(fsm, 2, parent)
    assert not running_children(fsm.store.snapshot(), parent)
    launch(fsm, 3, parent, T0 + 2 * NS)
    assert running_children(fsm.store.snapshot(), parent)  # its evaluation is pending
    _finish(fsm, 4, f"tick/periodic-{T0 // NS + 2}")
    assert not running_children(fsm.store.snapshot(), parent)


def test_idempotency_token_finds_the_earlier_child() -> None:
    fsm = make_fsm()
    parent = dataclasses.replace(periodic_job(), periodic=None, id="render")
    register(fsm, 2, parent)
    child = dataclasses.replace(
        parent,
        id=dispatched_id("render", "", T0),
        parent_id="render",
        dispatched=True,
        dispatch_idempotency_token="t",
    )
    register(fsm, 3, child)
    twin = dataclasses.replace(child, id=dispatched_id("render", "", T0))
    assert twin.id != child.id
    found = find_idempotent_child(fsm.store.snapshot(), twin)
    assert found is not None and found.id == child.id
    # two dispatches that raced past the endpoint's check: the FSM writes one child
    result = register(fsm, 4, twin)
    assert isinstance(result, ApplyResult) and not result.found
    assert store_jobs.get_job(fsm.store.snapshot(), "default", twin.id) is None
    other = dataclasses.replace(twin, dispatch_idempotency_token="u")
    assert find_idempotent_child(fsm.store.snapshot(), other) is None


def test_snapshot_keeps_the_launch_table() -> None:
    fsm = make_fsm()
    register(fsm, 2, periodic_job())
    restored = StateStore()
    restored.restore(fsm.store.dump())
    assert store_periodic.get_launch(restored.snapshot(), "default", "tick") is not None


def test_payload_is_written_to_the_task_local_dir(tmp_path: Path) -> None:
    local = tmp_path / "t" / "local"
    local.mkdir(parents=True)
    task = Task(name="t", driver="raw_exec", dispatch_payload=DispatchPayloadConfig(file="in/data.bin"))
    job = Job(id="j", payload=base64.b64encode(b"\x00\x01payload").decode())
    path = write_dispatch_payload(str(local), task, job)
    assert Path(path).read_bytes() == b"\x00\x01payload"
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert write_dispatch_payload(str(local), Task(name="t"), job) == ""
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", local / "link")  # a symlink out of the task dir
    escaping = dataclasses.replace(task, dispatch_payload=DispatchPayloadConfig(file="link/x"))
    with pytest.raises(DriverError, match="escapes"):
        write_dispatch_payload(str(local), escaping, job)
    up = dataclasses.replace(task, dispatch_payload=DispatchPayloadConfig(file="../up.txt"))
    assert Path(write_dispatch_payload(str(local), up, job)) == tmp_path / "t" / "up.txt"

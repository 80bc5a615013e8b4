"""Issue 16 acceptance 3: ``/v1/event/stream`` on a real ``-dev`` agent.

1,000 job registers (8 in flight, so the group commit batches some into one entry) give exactly
Nomad's events, in index order: per job one ``Job``/``JobRegistered`` event at the register's
``JobModifyIndex``, its evaluation as ``Evaluation``/``JobRegistered`` (pending) at
``EvalCreateIndex``, then that evaluation ``complete`` and a new ``blocked`` one, both
``EvaluationUpdated`` (no node can run the jobs: tests/integration/event_load.py). Meanwhile a
subscriber that never reads is cut off (the rate with it is ``scripts/bench events``' figure).
"""

from __future__ import annotations

import json
import queue
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import DevAgent, wait_for
from tests.integration.event_load import EventReader, StalledStream, register_jobs

pytestmark = pytest.mark.slow

JOBS = 1000


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevAgent]:
    tmp = tmp_path_factory.mktemp("events")
    with DevAgent.running(tmp) as dev:
        yield dev


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = event["Payload"][event["Topic"]]
    return value


def test_thousand_registers_give_exactly_nomads_events_in_order_and_a_stalled_reader_is_cut_off(
    agent: DevAgent,
) -> None:
    reader = EventReader(agent.port, "topic=Job&topic=Evaluation")
    stalled = StalledStream(agent.port)
    ids = [f"ev-{i:04d}" for i in range(JOBS)]
    replies, _ = register_jobs(agent.port, ids, inflight=8)
    by_job = dict(zip(ids, replies, strict=True))

    def settled() -> bool:
        done = sum(
            1 for e in reader.events() if e["Topic"] == "Evaluation" and _payload(e)["Status"] == "blocked"
        )
        return done >= JOBS

    wait_for(settled, timeout=120, what="every job's evaluation to finish (blocked)")
    cut, tail = stalled.cut_off()
    frames = list(reader.frames)
    reader.close()

    data = [f for f in frames if f]  # {} are heartbeats
    # the shapes of Nomad's api.Events and api.Event
    assert all(set(f) == {"Index", "Events"} and isinstance(f["Index"], int) for f in data)
    for e in (e for f in data for e in f["Events"]):
        assert set(e) == {"Topic", "Type", "Key", "Namespace", "FilterKeys", "Index", "Payload"}
        assert all(isinstance(e[k], str) for k in ("Topic", "Type", "Key", "Namespace"))
        assert e["FilterKeys"] is None or all(isinstance(k, str) for k in e["FilterKeys"])
        assert isinstance(e["Index"], int) and list(e["Payload"]) == [e["Topic"]]
    indexes = [f["Index"] for f in data]
    assert indexes == sorted(set(indexes)), "frames must come once per index, in index order"
    assert all(e["Index"] == f["Index"] for f in data for e in f["Events"])

    jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    evals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in data:
        for e in f["Events"]:
            (jobs if e["Topic"] == "Job" else evals)[e["Key"]].append(e)
    assert sorted(jobs) == ids
    blocked_of: dict[str, list[str]] = defaultdict(list)
    for job_id, reply in by_job.items():
        [job] = jobs[job_id]
        assert (job["Type"], job["Index"], job["Namespace"]) == (
            "JobRegistered",
            reply["JobModifyIndex"],
            "default",
        )
        assert _payload(job)["ID"] == job_id and job["FilterKeys"] is None
        first, *later = evals[reply["EvalID"]]
        assert (first["Type"], first["Index"]) == ("JobRegistered", reply["EvalCreateIndex"])
        assert _payload(first)["Status"] == "pending" and first["FilterKeys"] == [job_id, ""]
        assert [(e["Type"], _payload(e)["Status"]) for e in later] == [("EvaluationUpdated", "complete")]
    for key, events in evals.items():
        if _payload(events[0])["Status"] == "blocked":
            assert [e["Type"] for e in events] == ["EvaluationUpdated"]
            blocked_of[_payload(events[0])["JobID"]].append(key)
    assert {j: len(b) for j, b in blocked_of.items()} == dict.fromkeys(ids, 1)
    assert len(evals) == 2 * JOBS
    assert sum(len(f["Events"]) for f in data) == 4 * JOBS

    assert cut, "a subscriber that stopped reading must be cut off"
    if b'"Error"' in tail:  # it may not have taken the last line (then the connection is reset)
        line = tail[tail.rindex(b'{"Error"') :].split(b"\n")[0]
        assert json.loads(line) == {"Error": "event dropped from buffer"}  # Nomad's text


def test_python_nomad_event_stream(agent: DevAgent, tmp_path: Path) -> None:
    import nomad

    n = nomad.Nomad(host="127.0.0.1", port=agent.port, timeout=10)
    thread, stop, events = n.event.stream.get_stream(topic=["Job:pyev"], timeout=30)
    thread.daemon = True
    thread.start()

    def registered() -> Any:  # until the stream thread has subscribed, a register is not seen
        register_jobs(agent.port, ["other-job", "pyev"], inflight=1)
        try:
            return events.get(timeout=0.5)
        except queue.Empty:
            return None

    frame = wait_for(registered, timeout=30, what="python-nomad to see the register")
    stop.set()  # the thread looks at it after its next line: give it one, and let it end
    register_jobs(agent.port, ["pyev"], inflight=1)
    thread.join(15)
    assert not thread.is_alive()
    assert [(e["Topic"], e["Type"], e["Key"]) for e in frame["Events"]] == [("Job", "JobRegistered", "pyev")]
    assert frame["Events"][0]["Payload"]["Job"]["ID"] == "pyev"

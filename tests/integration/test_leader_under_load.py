"""Leadership holds under load: of three real servers, the leader's heap grows by millions of
long-lived objects (what a state store of a few hundred thousand allocations is made of: about
9 tracked objects each) while jobs are registered, and throughout, every server answers
``/v1/status/leader`` and ``/v1/agent/health`` within 1 s, the leader never changes and no
register fails.

The heap is grown by the test-only switch ``NOMADD_TEST_HEAP_GROWTH`` (``nomadd.agent.runtime``):
committing that many allocations through a cluster takes minutes. A cyclic-GC policy that
rescans the whole heap at each full collection pauses every thread of a server for seconds at
this size (Raft's election timeout is 0.4-1.0 s).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from nomadd.agent.runtime import HEAP_GROWTH_ENV
from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.integration.event_load import blocked_job

pytestmark = pytest.mark.slow

HEAP_OBJECTS = 3_000_000  # a full collection of that many took 2-3 s here
ANSWER_WITHIN_S = 1.0
GROWTH_TIMEOUT_S = 40.0  # the growth takes 6-20 s depending on the machine's load
AFTER_GROWTH_S = 5.0  # load goes on this long on the grown heaps
POLL_EVERY_S = 0.2


def _register_loop(leader: Agent, stop: threading.Event, failures: list[str], done: list[int]) -> None:
    i = 0
    while not stop.is_set():
        try:
            leader.api("PUT", "/v1/jobs", blocked_job(f"load-{i}"), timeout=15)
            done.append(i)
        except (HTTPError, OSError) as err:
            failures.append(f"register load-{i}: {err}")
        i += 1


def _gauge(agent: Agent, name: str) -> float:
    metrics = agent.api("GET", "/v1/metrics", timeout=5)
    return next((g["Value"] for g in metrics["Gauges"] if g["Name"] == name), 0.0)


def test_a_growing_heap_under_load_keeps_the_leader_and_answers_within_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    triggers = tmp_path / "grow-heap"
    triggers.mkdir()
    monkeypatch.setenv(HEAP_GROWTH_ENV, str(triggers))
    cluster = Cluster(tmp_path)
    stop = threading.Event()
    try:
        servers, leader = cluster.start_servers(3)
        failures: list[str] = []
        done: list[int] = []
        loader = threading.Thread(target=_register_loop, args=(leader, stop, failures, done), daemon=True)
        loader.start()
        (triggers / leader.name).write_text(str(HEAP_OBJECTS))
        slow: list[str] = []
        grown = time.monotonic() + GROWTH_TIMEOUT_S
        deadline = grown
        while time.monotonic() < deadline:
            if deadline == grown and "test heap growth done" in leader.output:
                deadline = time.monotonic() + AFTER_GROWTH_S
            for s in servers:
                for path in ("/v1/status/leader", "/v1/agent/health"):
                    t0 = time.monotonic()
                    try:
                        answer = s.api("GET", path, timeout=ANSWER_WITHIN_S)
                    except (HTTPError, OSError) as err:
                        slow.append(f"{s.name} {path}: {err!r} after {time.monotonic() - t0:.2f}s")
                        continue
                    took = time.monotonic() - t0
                    if took > ANSWER_WITHIN_S:
                        slow.append(f"{s.name} {path}: answered in {took:.2f}s")
                    if path == "/v1/status/leader" and answer != leader.raft_addr:
                        slow.append(f"{s.name} names leader {answer!r}, not {leader.raft_addr}")
            time.sleep(POLL_EVERY_S)
        stop.set()
        loader.join(20)
        pauses = {s.name: _gauge(s, "nomad.runtime.gc_max_pause_ns") / 1e6 for s in servers}
        assert not slow, f"{len(slow)} slow or wrong answers (longest gc pause ms: {pauses}):\n" + "\n".join(
            slow[:20]
        )
        assert not failures, "\n".join(failures[:10])
        assert "test heap growth done" in leader.output, "the leader did not grow its heap"

        assert len(done) >= 10, f"only {len(done)} registers went through"
        assert cluster.leader_of(servers) is leader
    finally:
        stop.set()
        cluster.close()

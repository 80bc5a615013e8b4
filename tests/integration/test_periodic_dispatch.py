"""Issue 13 acceptance 4 and 5 with real agent processes.

4. A periodic job (a 7-field cron: every 2 seconds) launches children on a real 3-server
   cluster; the leader is killed with SIGKILL mid-schedule and the new leader goes on without
   launching any time twice (each child has one evaluation, launch times are unique and a
   period apart); ``prohibit_overlap`` skips launches while a child runs; ``job periodic
   force`` launches at once.
5. A parameterized job dispatched with a payload and meta on one agent that is server and
   client: the task reads ``local/<dispatch_payload.file>`` and the meta; a second dispatch
   with the same idempotency token returns the same child.
"""

from __future__ import annotations

import base64
import itertools
import signal
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import Agent, Cluster, HTTPError
from tests.integration.test_client_allocs import RAW_EXEC

pytestmark = pytest.mark.slow

NS = 1_000_000_000
PERIOD_S = 2


def _q(job_id: str) -> str:
    return urllib.parse.quote(job_id, safe="")


def batch_job(job_id: str, script: str, **extra: Any) -> dict[str, Any]:
    task = {
        "Name": "t",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 20, "MemoryMB": 16},
        "KillTimeout": NS,
    }
    task.update(extra.pop("task", {}))
    group = {
        "Name": "g",
        "Count": 1,
        "Tasks": [task],
        "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
        "ReschedulePolicy": {"Attempts": 0, "Unlimited": False},
    }
    return {"ID": job_id, "Type": "batch", "Datacenters": ["dc1"], "TaskGroups": [group], **extra}


def children(agent: Agent, parent: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = agent.api("GET", "/v1/jobs", params={"prefix": parent + "/"}, timeout=5.0)
    return [j for j in jobs if j["ParentID"] == parent]


def launch_second(child_id: str) -> int:
    return int(child_id.rsplit("/periodic-", 1)[1])


def test_dispatch_payload_meta_and_idempotency(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        agent = cluster.add_server(bootstrap_expect=1, extra={"client": {"enabled": True}, **RAW_EXEC})
        agent.client = True
        agent.start()
        cluster.wait_leader([agent])
        cluster.wait_for(
            lambda: [n["Status"] for n in agent.api("GET", "/v1/nodes")] == ["ready"], 30, "node ready"
        )
        out = tmp_path / "seen.txt"
        script = f'cat "$NOMAD_TASK_DIR/input.txt" > {out}.tmp; echo " $NOMAD_META_who" >> {out}.tmp; mv {out}.tmp {out}'
        job = batch_job(
            "render",
            script,
            ParameterizedJob={"Payload": "required", "MetaRequired": ["who"], "MetaOptional": ["x"]},
            task={"DispatchPayload": {"File": "input.txt"}},
        )
        reply = agent.api("PUT", "/v1/jobs", {"Job": job})
        assert reply["EvalID"] == ""  # a template makes no evaluation (Nomad)
        assert agent.api("GET", "/v1/job/render/evaluations") == []

        # the request is checked as Nomad checks it
        def refused(body: dict[str, Any], params: dict[str, str] | None = None) -> str:
            with pytest.raises(HTTPError) as err:
                agent.api("PUT", "/v1/job/render/dispatch", body, params=params)
            assert err.value.status == 400, err.value.body
            return err.value.body

        assert "required" in refused({"Meta": {"who": "w"}})
        assert "required meta" in refused({"Payload": base64.b64encode(b"x").decode()})
        assert "unpermitted" in refused(
            {"Payload": base64.b64encode(b"x").decode(), "Meta": {"who": "w", "y": "1"}}
        )
        assert "maximum size" in refused(
            {"Payload": base64.b64encode(b"x" * (16 * 1024 + 1)).decode(), "Meta": {"who": "w"}}
        )
        assert "base64" in refused({"Payload": "***", "Meta": {"who": "w"}})

        # through the CLI: payload from a file, meta, idempotency token
        payload = tmp_path / "payload.txt"
        payload.write_text("hello payload")
        res = agent.cli(
            "job", "dispatch", "-meta", "who=world", "-idempotency-token", "tok-1", "render", str(payload)
        )
        assert res.returncode == 0, res.stdout + res.stderr
        first = res.stdout.split("Dispatched Job ID = ", 1)[1].split()[0]
        assert first.startswith("render/dispatch-")
        cluster.wait_for(lambda: out.exists(), 30, "the dispatched task ran")
        assert out.read_text() == "hello payload world\n"
        child = agent.api("GET", f"/v1/job/{_q(first)}")
        assert child["ParentID"] == "render" and child["Dispatched"] is True
        assert base64.b64decode(child["Payload"]) == b"hello payload"
        assert child["Meta"]["who"] == "world" and child["DispatchIdempotencyToken"] == "tok-1"

        again = agent.api(
            "PUT",
            "/v1/job/render/dispatch",
            {"Payload": base64.b64encode(b"other").decode(), "Meta": {"who": "w2"}},
            params={"idempotency_token": "tok-1"},
        )
        assert again["DispatchedJobID"] == first
        assert [c["ID"] for c in children(agent, "render")] == [first]
        summary = agent.api("GET", "/v1/job/render/summary")
        assert (
            summary["Children"]["Pending"] + summary["Children"]["Running"] + summary["Children"]["Dead"] == 1
        )
        assert agent.api("GET", "/v1/job/render")["Status"] == "running"
    finally:
        cluster.close()


def test_periodic_across_leader_kill_overlap_and_force(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers, leader = cluster.start_servers(3)
        client = cluster.add_client(servers=servers, extra=RAW_EXEC).start()
        cluster.wait_for(
            lambda: [n["Status"] for n in leader.api("GET", "/v1/nodes")] == ["ready"], 30, "client ready"
        )
        log = tmp_path / "runs.log"
        tick = batch_job(
            "tick",
            f'echo "$NOMAD_JOB_ID" >> {log}',
            Periodic={"Spec": f"*/{PERIOD_S} * * * * * *", "SpecType": "cron", "TimeZone": "Europe/Berlin"},
        )
        assert leader.api("PUT", "/v1/jobs", {"Job": tick})["EvalID"] == ""
        cluster.wait_for(lambda: len(children(leader, "tick")) >= 3, 30, "three launches")
        # kill the leader right after a launch: the next leader is elected before the next
        # launch time, so a leader that forgot the recorded launch would launch it again
        count = len(children(leader, "tick"))
        cluster.wait_for(lambda: len(children(leader, "tick")) > count, 10, "one more launch")
        leader.kill(signal.SIGKILL)
        alive = [s for s in servers if s is not leader]
        new_leader = cluster.wait_leader(alive, 30)
        before = len(children(new_leader, "tick"))
        cluster.wait_for(lambda: len(children(new_leader, "tick")) >= before + 3, 30, "launches go on")

        # stop launching, then check every child: one evaluation, one run, unique times
        new_leader.api("DELETE", "/v1/job/tick")
        time.sleep(1)
        kids = children(new_leader, "tick")
        seconds = sorted(launch_second(c["ID"]) for c in kids)
        assert len(seconds) == len(set(seconds)), seconds
        gaps = [b - a for a, b in itertools.pairwise(seconds)]
        assert all(g >= 1 for g in gaps), seconds  # a catch-up launch (missed time) is at "now"
        for c in kids:
            evals = new_leader.api("GET", f"/v1/job/{_q(c['ID'])}/evaluations")
            assert len(evals) == 1, (c["ID"], evals)
        cluster.wait_for(
            lambda: all(j["Status"] == "dead" for j in children(new_leader, "tick")), 30, "runs done"
        )
        runs = log.read_text().split()
        assert len(runs) == len(set(runs)) == len(kids), runs

        # prohibit_overlap: a child that runs 5 s holds back the launches in between
        slow = batch_job(
            "slow",
            "sleep 5",
            Periodic={"Spec": f"*/{PERIOD_S} * * * * * *", "SpecType": "cron", "ProhibitOverlap": True},
        )
        new_leader.api("PUT", "/v1/jobs", {"Job": slow})
        cluster.wait_for(lambda: len(children(new_leader, "slow")) >= 2, 40, "two slow launches")
        new_leader.api("DELETE", "/v1/job/slow")
        secs = sorted(launch_second(c["ID"]) for c in children(new_leader, "slow"))
        assert all(b - a >= 5 for a, b in itertools.pairwise(secs)), secs

        # force: a child at once, whatever the schedule (a cron far in the future)
        yearly = batch_job("yearly", "true", Periodic={"Spec": "0 0 1 1 *", "SpecType": "cron"})
        new_leader.api("PUT", "/v1/jobs", {"Job": yearly})
        res = new_leader.cli("job", "periodic", "force", "-detach", "yearly")
        assert res.returncode == 0, res.stdout + res.stderr
        assert "Evaluation ID" in res.stdout
        kids = children(new_leader, "yearly")
        assert len(kids) == 1 and abs(launch_second(kids[0]["ID"]) - time.time()) < 10
        with pytest.raises(HTTPError) as err:
            new_leader.api("PUT", "/v1/job/slow/periodic/force")
        assert err.value.status == 400  # stopped: no longer tracked
        assert client.running()
    finally:
        cluster.close()

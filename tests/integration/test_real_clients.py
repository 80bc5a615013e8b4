"""docs/architecture.md §HTTP API: third-party Nomad clients from PyPI work unmodified.

python-nomad and nomadpy (a port of Nomad's Go ``api`` package) drive one -dev agent through
the event stream, job parse and validate, search, namespaces, the client file system and the
allocation and node stats, exactly as they would drive HashiCorp Nomad; nomad-tools' ``watch``
(the former ``nomad-watch``) registers a batch job from a JSON job file and follows it to its end.
nomad-tools runs from a venv of its own (``requirements/nomad-tools.lock``), made on first use.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nomad
import nomadpy
import pytest

from tests.helpers import ROOT, DevAgent, wait_for

pytestmark = pytest.mark.slow

GREETING = "hello from a real client\n"

# A service job that leaves a file in its task's local/ directory and keeps running, so the
# file-system and stats endpoints have a live allocation to look at.
SERVICE_HCL = """
job "JOB" {
  datacenters = ["dc1"]
  type        = "service"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "mkdir -p local/sub && printf 'hello from a real client\\\\n' > local/greeting.txt && echo started && exec sleep 300"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""


def service_hcl(job_id: str) -> str:
    return SERVICE_HCL.replace('job "JOB"', f'job "{job_id}"')


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevAgent]:
    with DevAgent.running(tmp_path_factory.mktemp("realclients")) as d:
        yield d


@pytest.fixture(scope="module")
def pn(dev: DevAgent) -> nomad.Nomad:
    return nomad.Nomad(host="127.0.0.1", port=dev.port, timeout=10)


@pytest.fixture(scope="module")
def npy(dev: DevAgent) -> nomadpy.Client:
    return nomadpy.Client(nomadpy.Config(address=f"http://127.0.0.1:{dev.port}"))


@pytest.fixture(scope="module")
def running_alloc(pn: nomad.Nomad) -> Iterator[dict[str, Any]]:
    """A running allocation of a service job registered with python-nomad (from HCL through
    PUT /v1/jobs/parse), its greeting file written."""
    job = pn.jobs.parse(service_hcl("rc-service"), canonicalize=True)
    pn.job.register_job("rc-service", {"Job": job})
    try:
        alloc = wait_for(
            lambda: next(
                (a for a in pn.job.get_allocations("rc-service") if a["ClientStatus"] == "running"),
                None,
            ),
            timeout=30,
            what="the service allocation to run",
        )
        wait_for(
            lambda: pn.client.cat.read_file(alloc["ID"], "/t/local/greeting.txt") == GREETING,
            timeout=15,
            what="the task to write its greeting",
        )
        yield alloc
    finally:
        pn.job.deregister_job("rc-service", purge=True)


# --- python-nomad -------------------------------------------------------------------------------


def test_python_nomad_parse_and_validate(pn: nomad.Nomad) -> None:
    job = pn.jobs.parse(service_hcl("pn-parse"), canonicalize=True)
    assert job["ID"] == "pn-parse"
    assert job["Type"] == "service"
    assert job["Namespace"] == "default"  # canonicalized
    task = job["TaskGroups"][0]["Tasks"][0]
    assert task["Driver"] == "raw_exec"
    assert task["Config"]["command"] == "/bin/sh"
    assert task["Resources"]["MemoryMB"] == 32
    reply = pn.validate.validate_job({"Job": job}).json()
    assert not reply["ValidationErrors"], reply
    assert reply["Error"] == ""
    bad = dict(job, TaskGroups=[])
    reply = pn.validate.validate_job({"Job": bad}).json()
    assert reply["ValidationErrors"], reply
    assert pn.jobs.parse(service_hcl("pn-raw"))["ID"] == "pn-raw"


def test_python_nomad_event_stream(pn: nomad.Nomad) -> None:
    job_id = f"pn-events-{uuid.uuid4().hex[:6]}"
    stream, stop, events = pn.event.stream.get_stream(topic=[f"Job:{job_id}"], timeout=30)
    stream.daemon = True  # it only notices ``stop`` at the next line (a heartbeat at the latest)
    stream.start()
    try:
        time.sleep(0.5)  # subscribed before the register
        job = pn.jobs.parse(service_hcl(job_id), canonicalize=True)
        reg = pn.job.register_job(job_id, {"Job": job})
        batch = events.get(timeout=15)
        assert batch["Index"] > 0
        kinds = {(e["Topic"], e["Type"]) for e in batch["Events"]}
        assert ("Job", "JobRegistered") in kinds, batch
        ev = next(e for e in batch["Events"] if e["Type"] == "JobRegistered")
        assert ev["Key"] == job_id
        assert ev["Namespace"] == "default"
        assert ev["Payload"]["Job"]["ID"] == job_id
        assert ev["Index"] >= reg["JobModifyIndex"]
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            pn.job.deregister_job(job_id, purge=True)


def test_python_nomad_search(pn: nomad.Nomad, running_alloc: dict[str, Any]) -> None:
    found = pn.search.search("rc-serv", "jobs")
    assert found["Matches"]["jobs"] == ["rc-service"]
    assert found["Truncations"]["jobs"] is False
    found = pn.search.search(running_alloc["ID"][:8], "allocs")
    assert found["Matches"]["allocs"] == [running_alloc["ID"]]
    every = pn.search.search("rc-serv", "all")
    assert "rc-service" in every["Matches"]["jobs"]
    fuzzy = pn.search.fuzzy_search("service", "jobs")
    assert any(m["ID"] == "rc-service" for m in fuzzy["Matches"]["jobs"]), fuzzy


def test_python_nomad_namespaces(pn: nomad.Nomad) -> None:
    pn.namespace.create_namespace({"Name": "pn-team", "Description": "made by python-nomad"})
    try:
        names = [ns["Name"] for ns in pn.namespaces.get_namespaces()]
        assert "default" in names and "pn-team" in names
        assert "pn-team" in pn.namespaces
        got = pn.namespace.get_namespace("pn-team")
        assert got["Description"] == "made by python-nomad"
        pn.namespace.update_namespace("pn-team", {"Name": "pn-team", "Description": "changed"})
        assert pn.namespace.get_namespace("pn-team")["Description"] == "changed"
        assert [ns["Name"] for ns in pn.namespaces.get_namespaces(prefix="pn-")] == ["pn-team"]
    finally:
        pn.namespace.delete_namespace("pn-team")
    assert "pn-team" not in pn.namespaces


def test_python_nomad_client_fs(pn: nomad.Nomad, running_alloc: dict[str, Any]) -> None:
    alloc_id = running_alloc["ID"]
    root = {f["Name"] for f in pn.client.ls.list_files(alloc_id, "/")}
    assert {"alloc", "t"} <= root, root
    local = {f["Name"]: f for f in pn.client.ls.list_files(alloc_id, "/t/local")}
    assert local["sub"]["IsDir"] is True
    assert local["greeting.txt"]["Size"] == len(GREETING)
    st = pn.client.stat.stat_file(alloc_id, "/t/local/greeting.txt")
    assert st["Name"] == "greeting.txt"
    assert st["IsDir"] is False
    assert st["Size"] == len(GREETING)
    assert st["FileMode"].startswith("-rw")
    assert st["ModTime"]
    assert pn.client.cat.read_file(alloc_id, "/t/local/greeting.txt") == GREETING
    assert pn.client.read_at.read_file_offset(alloc_id, 6, 4, "/t/local/greeting.txt") == "from"
    logs = pn.client.stream_logs.stream(alloc_id, "t", "stdout", plain=True)
    assert logs == "started\n"


def test_python_nomad_alloc_and_node_stats(pn: nomad.Nomad, running_alloc: dict[str, Any]) -> None:
    usage = pn.client.allocation.read_allocation_stats(running_alloc["ID"])
    assert set(usage) >= {"ResourceUsage", "Tasks", "Timestamp"}
    assert usage["ResourceUsage"]["MemoryStats"]["RSS"] >= 0
    assert "t" in usage["Tasks"]
    host = pn.client.stats.read_stats(running_alloc["NodeID"])
    assert host["Memory"]["Total"] > 0
    assert host["CPU"], host
    assert host["Uptime"] > 0
    assert host["AllocDirStats"]["Size"] > 0


# --- nomadpy ------------------------------------------------------------------------------------


def test_nomadpy_parse_and_validate(npy: nomadpy.Client) -> None:
    job = npy.jobs.parse_hcl(service_hcl("npy-parse"), canonicalize=True)
    assert job.id == "npy-parse"
    assert job.namespace == "default"
    assert job.task_groups is not None
    assert job.task_groups[0].tasks is not None
    assert job.task_groups[0].tasks[0].driver == "raw_exec"
    reply, _ = npy.jobs.validate(job)
    assert not reply.validation_errors
    assert not reply.error


def test_nomadpy_event_stream(npy: nomadpy.Client) -> None:
    job_id = f"npy-events-{uuid.uuid4().hex[:6]}"
    got: queue.Queue[Any] = queue.Queue()

    def consume() -> None:
        stream = npy.event_stream.stream({"Job": [job_id]}, index=0, timeout=30)
        try:
            for batch in stream:
                got.put(batch)
                return
        except Exception as err:  # handed to the test thread
            got.put(err)
        finally:
            stream.close()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.5)
    job = npy.jobs.parse_hcl(service_hcl(job_id), canonicalize=True)
    npy.jobs.register(job)
    try:
        batch = got.get(timeout=15)
        assert not isinstance(batch, Exception), batch
        assert batch.index > 0
        assert batch.events
        ev = next(e for e in batch.events if e.type == "JobRegistered")
        assert ev.topic == "Job"
        assert ev.key == job_id
        registered = ev.job()
        assert registered is not None and registered.id == job_id
    finally:
        npy.jobs.deregister(job_id, purge=True)


def test_nomadpy_search(npy: nomadpy.Client, running_alloc: dict[str, Any]) -> None:
    found, _ = npy.search.prefix_search("rc-serv", "jobs")
    assert found.matches == {"jobs": ["rc-service"]}
    assert found.truncations == {"jobs": False}
    fuzzy, _ = npy.search.fuzzy_search("service", "jobs")
    assert fuzzy.matches is not None
    assert any(m.id == "rc-service" for m in fuzzy.matches["jobs"])


def test_nomadpy_namespaces(npy: nomadpy.Client) -> None:
    npy.namespaces.register(nomadpy.Namespace(name="npy-team", description="made by nomadpy"))
    try:
        names = [ns.name for ns in npy.namespaces.list()[0]]
        assert "default" in names and "npy-team" in names
        info, _ = npy.namespaces.info("npy-team")
        assert info.description == "made by nomadpy"
        assert [ns.name for ns in npy.namespaces.prefix_list("npy-")[0]] == ["npy-team"]
    finally:
        npy.namespaces.delete("npy-team")
    assert "npy-team" not in [ns.name for ns in npy.namespaces.list()[0]]


def test_nomadpy_client_fs(npy: nomadpy.Client, running_alloc: dict[str, Any]) -> None:
    alloc_id = running_alloc["ID"]
    files, _ = npy.alloc_fs.list(alloc_id, "/t/local")
    by_name = {f.name: f for f in files}
    assert by_name["sub"].is_dir is True
    assert by_name["greeting.txt"].size == len(GREETING)
    st, _ = npy.alloc_fs.stat(alloc_id, "/t/local/greeting.txt")
    assert st.name == "greeting.txt" and st.size == len(GREETING) and not st.is_dir
    assert npy.alloc_fs.cat(alloc_id, "/t/local/greeting.txt") == GREETING.encode()
    assert npy.alloc_fs.read_at(alloc_id, "/t/local/greeting.txt", 6, 4) == b"from"
    frames = npy.alloc_fs.stream(alloc_id, "/t/local/greeting.txt", "start", 0, timeout=15)
    try:
        first = next(frames)
    finally:
        frames.close()
    assert first.file == "t/local/greeting.txt" or first.file.endswith("greeting.txt")
    assert first.data_bytes == GREETING.encode()
    logs = npy.alloc_fs.logs(alloc_id, False, "t", "stdout", "start", 0, timeout=15)
    try:
        data = b"".join(f.data_bytes for f in logs)
    finally:
        logs.close()
    assert data == b"started\n"


def test_nomadpy_alloc_and_node_stats(npy: nomadpy.Client, running_alloc: dict[str, Any]) -> None:
    usage = npy.allocations.stats(running_alloc["ID"])
    assert usage.resource_usage is not None
    assert usage.tasks is not None and "t" in usage.tasks
    assert usage.timestamp > 0
    host = npy.nodes.stats(running_alloc["NodeID"])
    assert host.memory is not None and host.memory.total > 0
    assert host.cpu
    assert host.uptime > 0


# --- nomad-watch (nomad-tools) ------------------------------------------------------------------

TOOLS_LOCK = ROOT / "requirements" / "nomad-tools.lock"


def nomad_tools_venv() -> Path:
    """A venv of its own for nomad-tools, from requirements/nomad-tools.lock (its pins of click
    and pydantic clash with the dev set's); made once, kept inside .venv/ beside the dev set."""
    venv = Path(sys.prefix) / "nomad-tools"
    want = hashlib.sha256(TOOLS_LOCK.read_bytes()).hexdigest()
    stamp = venv / ".nomadd-stamp"
    with open(Path(sys.prefix) / ".nomad-tools.lock", "w") as guard:  # pytest-xdist workers
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not stamp.is_file() or stamp.read_text() != want:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--python",
                    str(venv / "bin" / "python"),
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--require-hashes",
                    "--no-deps",
                    "-r",
                    str(TOOLS_LOCK),
                ],
                check=True,
                timeout=600,
            )
            stamp.write_text(want)
    return venv


def batch_job_json(job_id: str) -> dict[str, Any]:
    """A raw_exec batch job (API JSON, what ``watch --json`` reads) that prints three lines to
    stdout and one to stderr, and exits 0."""
    script = "for i in 1 2 3; do echo line $i; sleep 0.2; done; echo to-stderr >&2; exit 0"
    task = {
        "Name": "t",
        "Driver": "raw_exec",
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 50, "MemoryMB": 32},
    }
    group = {"Name": "g", "Count": 1, "Tasks": [task]}
    return {
        "Job": {"ID": job_id, "Name": job_id, "Type": "batch", "Datacenters": ["dc1"], "TaskGroups": [group]}
    }


def run_nomad_watch(
    dev: DevAgent, tmp_path: Path, job_id: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    """``nomad-tools watch [flags] --json run JOBFILE`` (the former ``nomad-watch``) against the
    agent: it registers the job itself, follows it and exits with the task's exit status."""
    jobfile = tmp_path / f"{job_id}.json"
    jobfile.write_text(json.dumps(batch_job_json(job_id)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMAD_")}
    env["NOMAD_ADDR"] = f"http://127.0.0.1:{dev.port}"
    exe = nomad_tools_venv() / "bin" / "nomad-tools"
    # -n -1: every log line from the start. With its default (the last 30 lines), nomad-tools
    # 0.5.8 drops the lines of an allocation newer than the job when no older line came first
    # (MyloggerDelayer returns before printing its newcache): a race in the client, Nomad or not.
    return subprocess.run(
        [str(exe), "watch", "-n", "-1", *flags, "--json", "run", str(jobfile)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def check_watched_to_the_end(proc: subprocess.CompletedProcess[str], job_id: str) -> None:
    report = f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, report
    # Task output, marked O (stdout) and E (stderr): "O>alloc>v0>t> line 1". nomad-tools writes
    # the two streams from separate threads, text and newline apart, so an E line can land in
    # the middle of an O line ("O>…> line 1E>…> to-stderr"): match the marks, not whole lines.
    out = re.findall(r"O>\S*?> (line \d)", proc.stdout)
    assert out == ["line 1", "line 2", "line 3"], report
    assert re.search(r"E>\S*?> to-stderr", proc.stdout), report
    assert "Terminated Exit Code: 0" in proc.stdout, report
    # Its verdict: the job is dead and finished, and the one task's exit status is its own.
    assert f"Job {job_id}#0@default dead with no active allocations" in proc.stderr, report
    assert "Single task exited with 0 exit status. Exit code is 0." in proc.stderr, report


def test_nomad_watch_run_follows_a_batch_job_to_its_end(dev: DevAgent, tmp_path: Path) -> None:
    """Through the event stream (topics Job, Evaluation, Allocation, Deployment), the job's
    reads, and the task logs followed with ``/v1/client/fs/logs``."""
    check_watched_to_the_end(run_nomad_watch(dev, tmp_path, "watched"), "watched")


def test_nomad_watch_run_polling(dev: DevAgent, tmp_path: Path) -> None:
    """The same with ``--polling``: the job, its versions, deployments, evaluations and
    allocations read again and again instead of the event stream."""
    check_watched_to_the_end(
        run_nomad_watch(dev, tmp_path, "watched-polling", "--polling"), "watched-polling"
    )

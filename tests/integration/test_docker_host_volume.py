"""Issue 14 acceptance 5, docker part: a client ``host_volume`` mounted read-only into a docker
task through its group ``volume`` and task ``volume_mount`` (``TaskConfig.mounts`` → a
read-only bind): the task reads the host's file, its writes fail, the host file is unchanged; a
read-write host volume takes the task's writes. Runs against podman's Docker API
(tests/docker_env.py), like test_docker_driver.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docker_env import Podman, need_podman
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.slow

SCRIPT = (
    "cat /srv/data/hello; "
    "echo changed > /srv/data/hello && echo write=allowed || echo write=refused; "
    "touch /srv/data/new && echo create=allowed || echo create=refused; "
    "echo note > /srv/scratch/from-task && echo scratch=written; "
    "echo done=1; exec sleep 600"
)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    need_podman()
    service = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield service.start()
    finally:
        service.stop()


def _job(volumes: dict[str, Any], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    task = {
        "Name": "t",
        "Driver": "docker",
        "Config": {"image": "localhost/nomadd-test:latest", "command": "/bin/sh", "args": ["-c", SCRIPT]},
        "Resources": {"CPU": 50, "MemoryMB": 64},
        "KillTimeout": 1_000_000_000,
        "VolumeMounts": mounts,
    }
    group = {"Name": "g", "Count": 1, "Volumes": volumes, "Tasks": [task]}
    return {"Job": {"ID": "reader", "Type": "service", "Datacenters": ["dc1"], "TaskGroups": [group]}}


def test_host_volume_read_only_in_a_docker_task(tmp_path: Path, podman: Podman) -> None:
    shared, scratch = tmp_path / "shared", tmp_path / "scratch"
    shared.mkdir()
    scratch.mkdir()
    (shared / "hello").write_text("hello-from-host\n")
    for p in (shared, scratch):
        os.chmod(p, 0o777)
    os.chmod(shared / "hello", 0o666)  # writable by anyone: only the read-only mount stops a write
    extra = {
        "client": {
            "host_volume": {
                "shared": {"path": str(shared), "read_only": True},
                "scratch": {"path": str(scratch), "read_only": False},
            }
        },
        "plugin": {"docker": {"config": {"endpoint": podman.endpoint, "gc": {"image": False}}}},
    }
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        cluster.add_client(servers=[server], extra=extra).start()

        def docker_ready() -> bool:
            nodes = server.api("GET", "/v1/nodes")
            if [n["Status"] for n in nodes] != ["ready"]:
                return False
            return bool(
                server.api("GET", f"/v1/node/{nodes[0]['ID']}")["Drivers"].get("docker", {}).get("Healthy")
            )

        cluster.wait_for(docker_ready, 40, "the client with a healthy docker driver")
        volumes = {
            "data": {"Type": "host", "Source": "shared", "ReadOnly": True},
            "work": {"Type": "host", "Source": "scratch", "ReadOnly": False},
        }
        mounts = [
            {"Volume": "data", "Destination": "/srv/data", "ReadOnly": False},
            {"Volume": "work", "Destination": "/srv/scratch"},
        ]
        server.api("PUT", "/v1/jobs", _job(volumes, mounts))

        def facts() -> dict[str, str] | None:
            allocs = server.api("GET", "/v1/job/reader/allocations")
            if not allocs or allocs[0]["ClientStatus"] != "running":
                return None
            out = server.cli("alloc", "logs", allocs[0]["ID"]).stdout
            got = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
            got["first"] = out.splitlines()[0] if out else ""
            return got if got.get("done") else None

        got = cluster.wait_for(facts, 60, "reader output")
        assert got["first"] == "hello-from-host", got
        assert got["write"] == "refused" and got["create"] == "refused", got
        assert (shared / "hello").read_text() == "hello-from-host\n"
        assert not (shared / "new").exists()
        assert got["scratch"] == "written", got
        assert (scratch / "from-task").read_text() == "note\n"
        server.api("DELETE", "/v1/job/reader")
    finally:
        cluster.close()

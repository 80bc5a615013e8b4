"""Issue 14 acceptance 5 (exec part) and 4 (volume part) with real agent processes (1 server +
1 client with two host volumes, root):

* the node carries its ``host_volume``s (``HostVolumes``, Nomad's shape);
* a host volume mounted read-only into an exec task: reads work, writes fail, the host file is
  unchanged; a read-write one takes the task's writes;
* a job asking for a volume no node has stays pending: its evaluation's FailedTGAllocs says
  "missing compatible host volumes" and a blocked evaluation waits; so does a read-write request
  of a read-only host volume;
* a ``volume_mount`` of a volume the group does not request is a 400 naming it;
* ``/v1/volumes?type=host`` and ``/v1/volume/host/:id`` answer as Nomad without dynamic volumes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import is_root, need
from tests.integration.cluster import Agent, Cluster, HTTPError

pytestmark = pytest.mark.slow

FILTER = "missing compatible host volumes"
READER = (
    "cat /srv/data/hello; "
    "echo changed > /srv/data/hello && echo write=allowed || echo write=refused; "
    "touch /srv/data/new && echo create=allowed || echo create=refused; "
    "echo note > /srv/scratch/from-task && echo scratch=written; "
    "echo done=1; exec sleep 600"
)


def _job(
    job_id: str, volumes: dict[str, Any], mounts: list[dict[str, Any]], script: str = READER
) -> dict[str, Any]:
    return {
        "Job": {
            "ID": job_id,
            "Name": job_id,
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [
                {
                    "Name": "g",
                    "Count": 1,
                    "Volumes": volumes,
                    "Tasks": [
                        {
                            "Name": "t",
                            "Driver": "exec",
                            "Config": {"command": "/bin/sh", "args": ["-c", script]},
                            "Resources": {"CPU": 50, "MemoryMB": 64},
                            "KillTimeout": 1_000_000_000,
                            "VolumeMounts": mounts,
                        }
                    ],
                }
            ],
        }
    }


def _vol(source: str, read_only: bool) -> dict[str, Any]:
    return {"Type": "host", "Source": source, "ReadOnly": read_only}


def _pending_with_reason(cluster: Cluster, server: Agent, job_id: str) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        evals: list[dict[str, Any]] = server.api("GET", f"/v1/job/{job_id}/evaluations")
        return evals if any(e["Status"] == "blocked" for e in evals) else None

    evals = cluster.wait_for(evaluated, 20, f"{job_id} blocked")
    done = [e for e in evals if e["Status"] == "complete"]
    assert done and done[0]["FailedTGAllocs"]["g"]["ConstraintFiltered"] == {FILTER: 1}, done
    assert done[0]["BlockedEval"], done
    assert server.api("GET", f"/v1/job/{job_id}/allocations") == []
    assert server.api("GET", f"/v1/job/{job_id}")["Status"] == "pending"


def test_host_volumes_mount_and_schedule(tmp_path: Path) -> None:
    need(is_root(), "the exec driver needs root")
    shared, scratch = tmp_path / "shared", tmp_path / "scratch"
    shared.mkdir()
    scratch.mkdir()
    os.chmod(scratch, 0o777)
    (shared / "hello").write_text("hello-from-host\n")
    os.chmod(shared / "hello", 0o666)  # writable by anyone: only the read-only mount stops a write
    os.chmod(shared, 0o777)
    volumes = {
        "shared": {"path": str(shared), "read_only": True},
        "scratch": {"path": str(scratch), "read_only": False},
    }
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1).start()
        cluster.wait_leader([server])
        cluster.add_client(servers=[server], extra={"client": {"host_volume": volumes}}).start()
        nodes = cluster.wait_for(
            lambda: (n := server.api("GET", "/v1/nodes")) and n[0]["Status"] == "ready" and n, 30, "client"
        )
        node = server.api("GET", f"/v1/node/{nodes[0]['ID']}")
        assert node["HostVolumes"]["shared"] == {
            "Name": "shared",
            "Path": str(shared),
            "ReadOnly": True,
            "ID": "",
        }
        assert node["HostVolumes"]["scratch"]["ReadOnly"] is False

        mounts = [
            {"Volume": "data", "Destination": "/srv/data", "ReadOnly": False},
            {"Volume": "work", "Destination": "/srv/scratch"},
        ]
        server.api(
            "PUT",
            "/v1/jobs",
            _job("reader", {"data": _vol("shared", True), "work": _vol("scratch", False)}, mounts),
        )

        def facts() -> dict[str, str] | None:
            allocs = server.api("GET", "/v1/job/reader/allocations")
            if not allocs or allocs[0]["ClientStatus"] != "running":
                return None
            out = server.cli("alloc", "logs", allocs[0]["ID"]).stdout
            got = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
            got["first"] = out.splitlines()[0] if out else ""
            return got if got.get("done") else None

        got = cluster.wait_for(facts, 40, "reader output")
        assert got["first"] == "hello-from-host"
        assert got["write"] == "refused" and got["create"] == "refused", got
        assert (shared / "hello").read_text() == "hello-from-host\n"
        assert not (shared / "new").exists()
        assert got["scratch"] == "written"
        assert (scratch / "from-task").read_text() == "note\n"

        # no node has the volume / the node's volume is read-only but the request is not
        server.api("PUT", "/v1/jobs", _job("nowhere", {"data": _vol("no-such-volume", True)}, []))
        _pending_with_reason(cluster, server, "nowhere")
        server.api("PUT", "/v1/jobs", _job("rw-on-ro", {"data": _vol("shared", False)}, []))
        _pending_with_reason(cluster, server, "rw-on-ro")

        # a mount of a volume the group does not request
        with pytest.raises(HTTPError) as err:
            server.api("PUT", "/v1/jobs", _job("undeclared", {}, [{"Volume": "ghost", "Destination": "/g"}]))
        assert err.value.status == 400
        assert "VolumeMounts[0].Volume: volume 'ghost' is not requested by the task group" in err.value.body

        assert server.api("GET", "/v1/volumes", params={"type": "host"}) == []
        with pytest.raises(HTTPError) as err:
            server.api("GET", "/v1/volume/host/anything")
        assert err.value.status == 404
    finally:
        cluster.close()

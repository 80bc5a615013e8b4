"""Issue 12, acceptance 2: every object the API returns decodes under a schema written from
Nomad's Go ``api`` structs (tests/api_shapes.py: key presence, Go types, RFC 3339 times).

One -dev agent runs a batch and a service job (raw_exec) and holds a variable; the test reads
every kind of object through the routes real clients use and decodes each strictly.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.api_shapes import decode
from tests.helpers import AgentProcess, dev_ports_config, wait_for

pytestmark = pytest.mark.slow


def _job(job_id: str, job_type: str, command: str) -> dict[str, Any]:
    task = {"Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/sh", "args": ["-c", command]}}
    return {
        "Job": {
            "ID": job_id,
            "Type": job_type,
            "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [task]}],
        }
    }


def test_every_object_decodes_as_nomads_api_structs(tmp_path: Path) -> None:
    cfg, http = dev_ports_config(tmp_path)
    agent = AgentProcess(["-dev", "-config", str(cfg)])
    base = f"http://127.0.0.1:{http}"

    def call(method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(base + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    try:
        agent.wait_line("agent started!")
        wait_for(
            lambda: [n for n in call("GET", "/v1/nodes") if n["Status"] == "ready"], timeout=30, what="a node"
        )
        call("PUT", "/v1/jobs", _job("once", "batch", "echo done"))
        call("PUT", "/v1/jobs", _job("web", "service", "sleep 300"))
        call("PUT", "/v1/var/app/config", {"Items": {"k": "v"}})
        wait_for(
            lambda: {a["ClientStatus"] for a in call("GET", "/v1/allocations")} >= {"complete", "running"},
            timeout=30,
            what="the batch alloc complete and the service alloc running",
        )
        node_id = call("GET", "/v1/nodes")[0]["ID"]
        alloc_id = call("GET", "/v1/allocations")[0]["ID"]
        eval_id = call("GET", "/v1/evaluations")[0]["ID"]
        reads: list[tuple[str, str, bool]] = [
            ("/v1/jobs", "JobListStub", True),
            ("/v1/job/web", "Job", False),
            ("/v1/job/web/summary", "JobSummary", False),
            ("/v1/job/web/allocations", "AllocationListStub", True),
            ("/v1/job/web/evaluations", "Evaluation", True),
            ("/v1/allocations", "AllocationListStub", True),
            (f"/v1/allocation/{alloc_id}", "Allocation", False),
            ("/v1/evaluations", "Evaluation", True),
            (f"/v1/evaluation/{eval_id}", "Evaluation", False),
            ("/v1/nodes", "NodeListStub", True),
            (f"/v1/node/{node_id}", "Node", False),
            (f"/v1/node/{node_id}/allocations", "Allocation", True),
            ("/v1/vars", "VariableMetadata", True),
            ("/v1/var/app/config", "Variable", False),
        ]
        failures: list[str] = []
        for path, struct, is_list in reads:
            value = call("GET", path)
            items = value if is_list else [value]
            assert items, f"{path} returned nothing to check"
            for i, item in enumerate(items):
                failures += decode(item, struct, f"{path}{f'[{i}]' if is_list else ''}")
        assert failures == [], f"{len(failures)} problems:\n" + "\n".join(failures)
    finally:
        agent.signal(signal.SIGINT)
        try:
            agent.wait(20)
        finally:
            agent.stop()

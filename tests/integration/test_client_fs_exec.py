"""Issue 16 acceptance 4 and 5 with real agent processes (1 server + 1 client, root).

* A raw_exec task makes symlinks to ``/``, ``/etc/shadow``, ``../..`` (and more) in its
  directories and replaces its own stderr log file by a link to ``/etc/shadow``; every
  ``/v1/client/fs/*`` endpoint, ``/v1/client/fs/logs`` (framed and plain), ``alloc fs`` and
  ``alloc logs`` are asked for each such path: none answers anything from outside the
  allocation directory, while paths inside still work.
* ``nomadd alloc exec -i -t <alloc> /bin/sh`` driven through tmux in a raw_exec and an exec task:
  types ``echo hello-$((6*7))``, sees ``hello-42``, exits 0.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import ROOT, is_root, need
from tests.integration.cluster import Agent, Cluster

pytestmark = pytest.mark.slow

RAW_EXEC = {"plugin": {"raw_exec": {"config": {"enabled": True}}}}
MARKER = "OUTSIDE-SECRET-4242"


def _task(driver: str, script: str) -> dict[str, Any]:
    return {
        "Name": "t",
        "Driver": driver,
        "Config": {"command": "/bin/sh", "args": ["-c", script]},
        "Resources": {"CPU": 50, "MemoryMB": 64},
        "KillTimeout": 1_000_000_000,
    }


def _job(job_id: str, groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "Job": {
            "ID": job_id,
            "Name": job_id,
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": name, "Count": 1, "Tasks": [task]} for name, task in groups.items()],
        }
    }


def _start(tmp_path: Path) -> tuple[Cluster, Agent, Agent]:
    cluster = Cluster(tmp_path)
    server = cluster.add_server(bootstrap_expect=1).start()
    cluster.wait_leader([server])
    client = cluster.add_client(servers=[server], extra=RAW_EXEC).start()
    cluster.wait_for(lambda: [n["Status"] for n in server.api("GET", "/v1/nodes")] == ["ready"], 30, "client")
    return cluster, server, client


def _running(cluster: Cluster, server: Agent, job_id: str, n: int) -> list[dict[str, Any]]:
    def ok() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = server.api("GET", f"/v1/job/{job_id}/allocations")
        if len(found) == n and all(a["ClientStatus"] == "running" for a in found):
            return found
        return None

    return cluster.wait_for(ok, 40, f"{n} allocations of {job_id} running")


def _get(agent: Agent, path: str, params: dict[str, str]) -> tuple[int, bytes]:
    url = f"{agent.url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _decoded(body: bytes) -> bytes:
    """A body with any StreamFrame data decoded (so a leak inside base64 is seen too)."""
    out = [body]
    for chunk in body.replace(b"}{", b"}\n{").splitlines():
        try:
            frame = json.loads(chunk)
        except ValueError:
            continue
        if isinstance(frame, dict) and frame.get("Data"):
            out.append(base64.b64decode(frame["Data"]))
    return b"\n".join(out)


ESCAPING = [
    "..",
    "../..",
    "/../../../etc/shadow",
    "t/local/to_root",
    "t/local/to_root/etc/shadow",
    "t/local/shadow",
    "t/local/up2/..",
    "t/local/up2/../../etc/shadow",
    "t/local/out",
    "t/local/out/secret",
    "t/up",
    "t/up/etc/shadow",
    "alloc/data/secret_link",
    "alloc/logs/t.stderr.0",
]


def test_a_task_cannot_read_outside_its_alloc_dir(tmp_path: Path) -> None:
    need(is_root(), "the task replaces a log file the agent (root) made")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text(MARKER + "\n")
    shadow = Path("/etc/shadow").read_bytes().split(b"\n")[0]
    script = (
        'cd "$NOMAD_TASK_DIR" && ln -s / to_root && ln -s /etc/shadow shadow && ln -s ../.. up2 && '
        f"ln -s {outside} out && echo inside > hello.txt && cd .. && ln -s ../.. up && "
        f'ln -s {outside}/secret "$NOMAD_ALLOC_DIR/data/secret_link" && '
        'rm -f "$NOMAD_ALLOC_DIR/logs/t.stderr.0" && ln -s /etc/shadow "$NOMAD_ALLOC_DIR/logs/t.stderr.0" && '
        "echo ready && exec sleep 600"
    )
    cluster, server, client = _start(tmp_path)
    try:
        server.api("PUT", "/v1/jobs", _job("fs", {"g": _task("raw_exec", script)}))
        alloc_id = _running(cluster, server, "fs", 1)[0]["ID"]
        logs = f"/v1/client/fs/logs/{alloc_id}"
        params = {"task": "t", "type": "stdout", "plain": "true"}
        cluster.wait_for(lambda: b"ready" in _get(client, logs, params)[1], 20, "the task made its links")

        def leaked(body: bytes) -> bool:
            text = _decoded(body)
            return MARKER.encode() in text or (bool(shadow) and shadow in text)

        asked = 0
        for path in ESCAPING:
            for op, extra in [
                ("ls", {}),
                ("stat", {}),
                ("cat", {}),
                ("readat", {"offset": "0", "limit": "4096"}),
                ("stream", {"follow": "false"}),
            ]:
                status, body = _get(client, f"/v1/client/fs/{op}/{alloc_id}", {"path": path, **extra})
                asked += 1
                assert status in (400, 404), (op, path, status, body[:200])
                assert not leaked(body), (op, path)
            cli = client.cli("alloc", "fs", alloc_id, path)
            assert cli.returncode == 1 and not leaked(cli.stdout.encode() + cli.stderr.encode()), (path, cli)
        for params in ({"plain": "true"}, {}):  # the log file that is a link to /etc/shadow
            status, body = _get(
                client, f"/v1/client/fs/logs/{alloc_id}", {"task": "t", "type": "stderr", **params}
            )
            assert status == 200 and not leaked(body) and body.strip() == b""
        logs_cli = client.cli("alloc", "logs", "-stderr", alloc_id, "t")
        assert logs_cli.returncode == 0 and not leaked(logs_cli.stdout.encode()), logs_cli
        assert asked == len(ESCAPING) * 5

        # inside the allocation directory everything still works, links that stay inside too
        names = {i["Name"] for i in client.api("GET", f"/v1/client/fs/ls/{alloc_id}", params={"path": "/"})}
        assert names == {"alloc", "t"}
        assert _get(client, f"/v1/client/fs/cat/{alloc_id}", {"path": "t/local/up2/t/local/hello.txt"}) == (
            200,
            b"inside\n",
        )
        status, body = _get(
            client, f"/v1/client/fs/stream/{alloc_id}", {"path": "t/local/hello.txt", "follow": "false"}
        )
        assert status == 200 and _decoded(body).endswith(b"inside\n")
        stdout = client.cli("alloc", "logs", alloc_id, "t")
        assert "ready" in stdout.stdout, stdout
        listing = client.cli("alloc", "fs", alloc_id, "t/local")
        assert listing.returncode == 0 and "hello.txt" in listing.stdout and "shadow" in listing.stdout
        # bad input: a clear 400, never a 500
        assert (
            _get(client, f"/v1/client/fs/readat/{alloc_id}", {"path": "t", "offset": "x", "limit": "1"})[0]
            == 400
        )
        assert (
            _get(client, f"/v1/client/fs/stream/{alloc_id}", {"path": "t/local/hello.txt", "origin": "mid"})[
                0
            ]
            == 400
        )
    finally:
        cluster.close()


def _tmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)


def _shell_through_tmux(client: Agent, alloc_id: str, tmp_path: Path, name: str) -> str:
    """Run ``alloc exec -i -t`` in a tmux pane, type into the shell, return the pane's text."""
    status = tmp_path / f"{name}.exit"
    cmd = (
        f"cd {ROOT} && NOMAD_ADDR={client.url} PYTHONPATH={ROOT} {sys.executable} -m nomadd "
        f"alloc exec -i -t {alloc_id[:8]} /bin/sh; echo $? > {status}; sleep 30"
    )
    session = f"nomadd-exec-{name}-{int(time.time())}"
    assert _tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd).returncode == 0
    try:
        pane = ""

        def screen(text: str) -> bool:
            nonlocal pane
            pane = _tmux("capture-pane", "-p", "-t", session).stdout
            return text in pane

        def prompt() -> bool:  # capture-pane drops the space after "$"
            screen("")
            return any(line.rstrip().endswith(("$", "#")) for line in pane.splitlines())

        try:
            Cluster.wait_for(prompt, 20, f"{name}: shell prompt")
            _tmux("send-keys", "-t", session, "echo hello-$((6*7))", "Enter")
            Cluster.wait_for(lambda: screen("hello-42"), 10, f"{name}: hello-42 in the pane")
            _tmux("send-keys", "-t", session, "stty size", "Enter")  # the pane's size reached the pty
            Cluster.wait_for(
                lambda: screen("") and re.search(r"^\d+ 120$", pane, re.M) is not None,
                10,
                f"{name}: tty size",
            )
            _tmux("send-keys", "-t", session, "exit", "Enter")
            Cluster.wait_for(status.exists, 10, f"{name}: alloc exec ended")
        except AssertionError as err:
            raise AssertionError(f"{err}; the pane shows:\n{pane}") from None
        assert status.read_text().strip() == "0", pane
        return pane
    finally:
        _tmux("kill-session", "-t", session)


def _exec_frames(agent: Agent, alloc_id: str, command: list[str]) -> tuple[bytes, int]:
    """Run ``command`` over the exec websocket of ``agent`` (Nomad's frames); (stdout, exit code)."""

    async def main() -> tuple[bytes, int]:
        params = {"task": "t", "command": json.dumps(command), "tty": "false"}
        url = f"{agent.url}/v1/client/allocation/{alloc_id}/exec?{urllib.parse.urlencode(params)}"
        out = b""
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_json({"stdin": {"close": True}})
            async for msg in ws:
                frame = json.loads(msg.data)
                out += base64.b64decode((frame.get("stdout") or {}).get("data") or "")
                if frame.get("exited"):
                    return out, int(frame["result"]["exit_code"])
        raise AssertionError("no exited frame")

    return asyncio.run(main())


def test_alloc_exec_interactive_shell_in_raw_exec_and_exec_tasks(tmp_path: Path) -> None:
    need(shutil.which("tmux") is not None, "tmux is not installed (scripts/test installs it)")
    need(is_root(), "the exec driver needs root")
    cluster, server, client = _start(tmp_path)
    try:
        groups = {"raw": _task("raw_exec", "exec sleep 600"), "iso": _task("exec", "exec sleep 600")}
        server.api("PUT", "/v1/jobs", _job("sh", groups))
        by_group = {a["TaskGroup"]: a["ID"] for a in _running(cluster, server, "sh", 2)}
        for group, alloc_id in sorted(by_group.items()):
            pane = _shell_through_tmux(client, alloc_id, tmp_path, group)
            assert "hello-42" in pane
        # the exec task's shell runs as its user (nobody), the raw_exec one as the agent's
        ids = {
            g: client.cli("alloc", "exec", "-i=false", "-t=false", a[:8], "id", "-un").stdout.strip()
            for g, a in by_group.items()
        }
        assert ids == {"raw": "root", "iso": "nobody"}, ids
        code = client.cli("alloc", "exec", "-i=false", by_group["raw"], "/bin/sh", "-c", "exit 3")
        assert code.returncode == 3, code
        bad = client.cli("alloc", "exec", "-i=false", by_group["raw"], "/no/such/cmd")
        assert bad.returncode != 0
        # asked of the server's agent: the websocket is relayed to the node that runs the task
        assert _exec_frames(server, by_group["iso"], ["/bin/sh", "-c", "echo via-$((40+2)); exit 5"]) == (
            b"via-42\n",
            5,
        )
    finally:
        cluster.close()

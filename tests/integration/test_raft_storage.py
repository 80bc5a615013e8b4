"""A real server agent and its Raft journal on disk: a torn tail is cut back with a warning and
the server starts with every whole entry; a file that is not a journal stops the agent with
exit 1 and a message naming the file and the reason."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster

pytestmark = pytest.mark.slow


def _journal(data_dir: Path) -> Path:
    return data_dir / "server" / "raft" / "raft.journal"


def test_a_torn_journal_tail_is_cut_back_and_the_server_keeps_its_data(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1)
        server.start()
        cluster.wait_leader([server])
        for i in range(10):
            server.api("PUT", f"/v1/var/k{i}", {"Items": {"i": str(i)}})
        server.kill(signal.SIGKILL)
        with open(_journal(server.data_dir), "ab") as f:
            f.write(b"\x40\x00\x00\x00\x12\x34\x56\x78half an entry, then the power went")
        server.start()
        cluster.wait_leader([server])
        paths = {v["Path"] for v in server.api("GET", "/v1/vars")}
        assert {f"k{i}" for i in range(10)} <= paths
        assert "raft journal tail torn" in server.output
        server.api("PUT", "/v1/var/after", {"Items": {"i": "x"}})
        assert "Traceback" not in server.output
    finally:
        cluster.close()


def test_a_file_that_is_not_a_journal_stops_the_agent_naming_it(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.add_server(bootstrap_expect=1)
        journal = _journal(server.data_dir)
        journal.parent.mkdir(parents=True, mode=0o700)
        journal.write_bytes(b"this is not a raft journal")
        server.start()
        assert server.wait_exit(30) == 1
        assert f"{journal}: not a nomadd raft journal" in server.output
        assert "Traceback" not in server.output
    finally:
        cluster.close()

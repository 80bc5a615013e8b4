"""Issue 2 acceptance 6: garbage on the serf and raft ports, a wrong gossip key, a join to a
closed port — logged, never a crash; a member with the wrong key never joins."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.slow


def _tcp_garbage(host: str, port: int, payload: bytes) -> None:
    with socket.create_connection((host, port), timeout=2) as s:
        try:
            s.sendall(payload)
            s.settimeout(0.3)
            s.recv(64)
        except OSError:
            pass  # the server may cut us off; that is the point


def test_garbage_wrong_key_and_closed_port(tmp_path: Path) -> None:
    key1 = base64.b64encode(os.urandom(32)).decode()
    key2 = base64.b64encode(os.urandom(32)).decode()
    cluster = Cluster(tmp_path, encrypt=key1)
    try:
        a = cluster.add_server(bootstrap_expect=1)
        a.start()
        cluster.wait_leader([a])
        a.api("PUT", "/v1/var/before", {"Items": {"v": "1"}})

        rnd = os.urandom
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            for i in range(300):
                u.sendto(rnd(1 + i % 1400), (a.ip, a.serf_port))
            u.sendto(b"", (a.ip, a.serf_port))
        for payload in (
            rnd(10),
            rnd(70_000),
            struct.pack("=I", 0x7FFFFFFF) + rnd(100),  # pysyncobj length prefix, absurd size
            struct.pack("=I", 20) + b"\x80\x02garbage-pickle!!",
            b"GET / HTTP/1.0\r\n\r\n",
        ):
            _tcp_garbage(a.ip, a.serf_port, payload)
            _tcp_garbage(a.ip, a.raft_port, payload)
        # a wrong-key server tries to join: it must fail and never appear as a member
        b = cluster.add_server(bootstrap_expect=1, extra={"server": {"encrypt": key2}})
        b.start()
        cluster.wait_leader([b])
        out = b.cli("server", "join", a.serf_addr)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "Error joining" in out.stderr
        # a join to a closed port fails cleanly
        closed = f"{a.ip}:{free_port(a.ip)}"
        out = a.cli("server", "join", closed)
        assert out.returncode == 1
        assert "Error joining" in out.stderr

        deadline = time.monotonic() + 3.0  # observation window: b must never show up
        while time.monotonic() < deadline:
            assert b.member_name not in cluster.members(a)
            assert a.member_name not in cluster.members(b)
            time.sleep(0.2)
        assert a.running()
        assert b.running()
        a.api("PUT", "/v1/var/after", {"Items": {"v": "2"}})
        assert {v["Path"] for v in a.api("GET", "/v1/vars")} == {"before", "after"}
        assert a.raft_addr in a.api("GET", "/v1/status/peers")
        assert "gossip dropped" in a.output
        assert "raft dropped a connection before the handshake" in a.output
        assert "Traceback" not in a.output
    finally:
        cluster.close()

"""Event stream load, shared by tests/integration/test_events.py and ``scripts/bench events``:
job registers over HTTP, a reading ``/v1/event/stream`` consumer, and a stalled one (a socket
with a small receive buffer that never reads).

The jobs are service jobs no node can run (a constraint on a node class nobody has), so the
scheduler evaluates each (its evaluation completes and leaves a blocked one) and no task
starts: the load is the servers' own (register, evaluate, events).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.integration.test_python_nomad import batch_job

__all__ = [
    "EventReader",
    "StalledStream",
    "blocked_job",
    "count_job_events",
    "register_jobs",
    "start_counter",
]


def blocked_job(job_id: str) -> dict[str, Any]:
    doc = batch_job(job_id, Path("/dev/null"))
    job = doc["Job"]
    job["Type"] = "service"
    job["Constraints"] = [{"LTarget": "${node.class}", "RTarget": "no-such-class", "Operand": "="}]
    return doc


def register_jobs(port: int, ids: list[str], inflight: int = 8) -> tuple[list[dict[str, Any]], float]:
    """``PUT /v1/jobs`` each job (``inflight`` at once, one connection per worker); returns the
    replies in ``ids`` order and the seconds taken."""
    local = threading.local()
    conns: list[http.client.HTTPConnection] = []

    def put(job_id: str) -> dict[str, Any]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conns.append(conn)
        conn.request("PUT", "/v1/jobs", body=json.dumps(blocked_job(job_id)).encode())
        resp = conn.getresponse()
        text = resp.read().decode()
        assert resp.status == 200, (resp.status, text[:300])
        reply: dict[str, Any] = json.loads(text)
        return reply

    start = time.monotonic()
    try:
        with ThreadPoolExecutor(inflight) as pool:
            replies = list(pool.map(put, ids))
    finally:
        for conn in conns:
            conn.close()
    return replies, time.monotonic() - start


class EventReader:
    """Reads ``/v1/event/stream?<query>`` on a thread; ``frames`` holds every JSON line."""

    def __init__(self, port: int, query: str = "", host: str = "127.0.0.1") -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed = threading.Event()
        self._conn = http.client.HTTPConnection(host, port, timeout=120)
        self._conn.request("GET", "/v1/event/stream" + (f"?{query}" if query else ""))
        self._resp = self._conn.getresponse()
        assert self._resp.status == 200, self._resp.read()[:300]
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._resp:
                self.frames.append(json.loads(line))
        except Exception:
            pass
        finally:
            self.closed.set()

    def events(self) -> list[dict[str, Any]]:
        return [e for f in list(self.frames) for e in f.get("Events") or ()]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            sock = self._conn.sock
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()
        self.closed.wait(5)


class StalledStream:
    """A subscriber that never reads: the request is sent on a socket with a small receive
    buffer and nothing is read until :meth:`cut_off` drains it to see whether the server ended
    the connection."""

    def __init__(self, port: int, query: str = "") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        path = "/v1/event/stream" + (f"?{query}" if query else "")
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    def cut_off(self, timeout: float = 10.0) -> tuple[bool, bytes]:
        """Read what the server sent; (True, tail) when it closed the connection (EOF or reset)
        within ``timeout``, else (False, tail)."""
        self.sock.settimeout(timeout)
        tail = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return True, tail
                tail = (tail + chunk)[-4096:]
        except ConnectionResetError:
            return True, tail
        except TimeoutError:
            return False, tail
        finally:
            self.sock.close()
        return False, tail


def count_job_events(port: int, want: int) -> tuple[int, int]:
    """Read the whole stream without parsing it until ``want`` Job events went by (a reader that
    costs its own process little); prints "ready" once subscribed; returns (Job events, bytes)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /v1/event/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    marker = b'"Topic":"Job"'
    seen = total = 0
    carry = sock.recv(1 << 16)  # the response head: the server subscribed before sending it
    print("ready", flush=True)
    with sock:
        while seen < want:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            data = carry + chunk
            seen += data.count(marker)
            carry = data[-(len(marker) - 1) :]
    return seen, total


def start_counter(port: int, want: int) -> subprocess.Popen[str]:
    """:func:`count_job_events` in its own process, returned once it has subscribed (it prints
    "<Job events> <bytes>" when done)."""
    code = f"from tests.integration.event_load import count_job_events as c; print(*c({port}, {want}))"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc

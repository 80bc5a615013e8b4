"""The docker driver's fingerprint: undetected (with the reason) when no daemon answers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path

import pytest

from nomadd.drivers.base import DriverConfig
from nomadd.drivers.docker import DockerDriver


def test_undetected_without_a_socket(tmp_path: Path) -> None:
    info = DockerDriver(DriverConfig(options={"endpoint": f"unix://{tmp_path}/none.sock"})).fingerprint()
    assert not info.detected and not info.healthy
    assert "Failed to connect to docker daemon" in info.health_description
    bad = DockerDriver(DriverConfig(options={"endpoint": "tcp://127.0.0.1:2375"})).fingerprint()
    assert not bad.detected and "only unix://" in bad.health_description
    off = DockerDriver(DriverConfig(options={"enabled": False})).fingerprint()
    assert not off.detected and off.health_description == "disabled"


def test_attributes_from_the_daemon(tmp_path: Path) -> None:
    path = str(tmp_path / "d.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    answers = {
        "/version": {"Version": "4.3.1", "ApiVersion": "1.41"},
        "/info": {"OSType": "linux", "Runtimes": {"runc": {}, "crun": {}}},
    }

    def serve() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                request = conn.recv(4096).decode()
                body = json.dumps(answers[request.split()[1]]).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    info = DockerDriver(
        DriverConfig(options={"endpoint": f"unix://{path}", "volumes": {"enabled": True}})
    ).fingerprint()
    t.join(5)
    server.close()
    assert info.detected and info.healthy
    assert info.attributes["driver.docker"] == "1"
    assert info.attributes["driver.docker.version"] == "4.3.1"
    assert info.attributes["driver.docker.runtimes"] == "crun,runc"
    assert info.attributes["driver.docker.volumes.enabled"] == "true"
    assert info.attributes["driver.docker.privileged.enabled"] == "false"


def test_a_daemon_that_does_not_answer_is_a_driver_error(tmp_path: Path) -> None:
    from nomadd.drivers.base import TaskConfig, TaskHandle
    from nomadd.structs.errors import DriverError

    d = DockerDriver(DriverConfig(options={"endpoint": f"unix://{tmp_path}/none.sock"}))
    cfg = TaskConfig(
        alloc_id="a",
        task_name="t",
        config={"image": "x:1"},
        task_dir=str(tmp_path / "a" / "t"),
        alloc_dir=str(tmp_path / "a" / "alloc"),
        log_dir=str(tmp_path / "a" / "alloc" / "logs"),
    )
    handle = TaskHandle(
        driver="docker", alloc_id="a", task_name="t", pid=0, start_time=0, started_at=0.0,
        driver_state={"container_id": "c1"},
    )  # fmt: skip

    async def main() -> None:
        with pytest.raises(DriverError, match="Cannot connect to Docker Engine|unreachable"):
            await d.start_task(cfg)
        with pytest.raises(DriverError, match="Cannot connect to Docker Engine|unreachable"):
            await d.signal_task(handle, "SIGTERM")
        assert await d.recover_task(handle) is False
        assert d._docker is not None
        await d._docker.close()

    asyncio.run(main())

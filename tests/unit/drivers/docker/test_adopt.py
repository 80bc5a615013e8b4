"""After an agent restart the docker driver keeps one container of a task and removes the rest:
the stored handle's, or (no handle stored) the one of the launch the client recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiodocker

from nomadd.drivers.base import DriverConfig, TaskConfig, TaskHandle
from nomadd.drivers.docker import DockerDriver
from nomadd.drivers.docker.config import LABEL_ALLOC_ID, LABEL_LAUNCH_ID, LABEL_TASK_NAME


class FakeContainer:
    def __init__(self, daemon: FakeContainers, cid: str, launch: str) -> None:
        self.daemon, self.id = daemon, cid
        self._container = {
            "Id": cid,
            "Labels": {LABEL_ALLOC_ID: "a1", LABEL_TASK_NAME: "t", LABEL_LAUNCH_ID: launch},
        }

    async def show(self) -> dict[str, Any]:
        if self.id not in self.daemon.live:
            raise aiodocker.DockerError(404, {"message": "no such container"})
        return {"Id": self.id, "Image": "sha256:i", "State": {"Running": True, "Pid": 0}}

    async def delete(self, **kw: Any) -> None:
        self.daemon.live.pop(self.id, None)
        self.daemon.removed.append(self.id)


class FakeContainers:
    def __init__(self, launches: dict[str, str]) -> None:
        self.live = {cid: FakeContainer(self, cid, launch) for cid, launch in launches.items()}
        self.removed: list[str] = []

    async def list(self, **kw: Any) -> list[FakeContainer]:
        return list(self.live.values())

    def container(self, cid: str) -> FakeContainer:
        return self.live.get(cid) or FakeContainer(self, cid, "")


class FakeDocker:
    def __init__(self, launches: dict[str, str]) -> None:
        self.containers = FakeContainers(launches)


def adopt(
    tmp_path: Path, launches: dict[str, str], stored: str | None, launch_id: str
) -> tuple[Any, FakeDocker]:
    d = DockerDriver(DriverConfig())
    fake = FakeDocker(launches)
    d._docker = fake  # type: ignore[assignment]
    cfg = TaskConfig(
        alloc_id="a1",
        task_name="t",
        task_dir=str(tmp_path / "a1" / "t"),
        alloc_dir=str(tmp_path / "a1" / "alloc"),
        log_dir=str(tmp_path / "a1" / "alloc" / "logs"),
        launch_id=launch_id,
    )
    handle = None
    if stored is not None:
        handle = TaskHandle(
            driver="docker",
            alloc_id="a1",
            task_name="t",
            pid=0,
            start_time=0,
            started_at=1.0,
            driver_state={
                "container_id": stored,
                "log_dir": cfg.log_dir,
                "log_max_files": 2,
                "log_max_bytes": 1000,
                "log_position": str(tmp_path / "pos.json"),
            },
        )

    async def main() -> Any:
        kept = await d.adopt_task(cfg, handle)
        d._tasks.cancel_all()  # the log copiers (the fake daemon serves no logs)
        return kept

    return asyncio.run(main()), fake


def test_stored_handle_kept_strays_removed(tmp_path: Path) -> None:
    kept, fake = adopt(tmp_path, {"c1": "L1", "c9": "L0"}, stored="c1", launch_id="L1")
    assert kept.driver_state["container_id"] == "c1"
    assert fake.containers.removed == ["c9"]


def test_without_a_handle_the_recorded_launch_is_found_by_its_labels(tmp_path: Path) -> None:
    kept, fake = adopt(tmp_path, {"c1": "L1", "c2": "L2"}, stored=None, launch_id="L2")
    assert kept.driver_state["container_id"] == "c2" and kept.driver_state["launch_id"] == "L2"
    assert fake.containers.removed == ["c1"]


def test_nothing_to_keep(tmp_path: Path) -> None:
    kept, fake = adopt(tmp_path, {"c1": "L1"}, stored="gone", launch_id="L3")
    assert kept is None and fake.containers.removed == ["c1"]

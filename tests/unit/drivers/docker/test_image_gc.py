"""An image no task uses is removed ``gc.image_delay`` later, unless a task takes it again."""

from __future__ import annotations

import asyncio
from typing import Any

from nomadd.drivers.base import DriverConfig
from nomadd.drivers.docker import DockerDriver


class FakeImages:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    async def delete(self, name: str, **kw: Any) -> None:
        self.deleted.append(name)


class FakeDocker:
    def __init__(self) -> None:
        self.images = FakeImages()


def driver(**gc: Any) -> tuple[DockerDriver, FakeDocker]:
    d = DockerDriver(DriverConfig(options={"gc": gc}))
    fake = FakeDocker()
    d._docker = fake  # type: ignore[assignment]
    return d, fake


def test_unused_image_removed_after_the_delay_and_kept_when_reused() -> None:
    async def main() -> None:
        d, fake = driver(image_delay="200ms")
        d._use_image("sha256:a", "c1")
        d._use_image("sha256:a", "c2")
        d._release_image("sha256:a", "c1")
        await asyncio.sleep(0.3)
        assert fake.images.deleted == []  # c2 still uses it
        d._release_image("sha256:a", "c2")
        await asyncio.sleep(0.1)
        d._use_image("sha256:a", "c3")  # taken again within the delay: kept
        await asyncio.sleep(0.3)
        assert fake.images.deleted == []
        d._release_image("sha256:a", "c3")
        await asyncio.sleep(0.1)
        assert fake.images.deleted == []  # not before the delay
        await asyncio.sleep(0.25)
        assert fake.images.deleted == ["sha256:a"]

    asyncio.run(main())


def test_gc_off_keeps_images() -> None:
    async def main() -> None:
        d, fake = driver(image=False, image_delay="0s")
        d._use_image("sha256:a", "c1")
        d._release_image("sha256:a", "c1")
        await asyncio.sleep(0.1)
        assert fake.images.deleted == []

    asyncio.run(main())

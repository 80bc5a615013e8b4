"""The ``docker`` task driver (:class:`~nomadd.drivers.docker.driver.DockerDriver`)."""

from __future__ import annotations

from nomadd.drivers.docker.driver import DockerDriver

__all__ = ["DockerDriver"]

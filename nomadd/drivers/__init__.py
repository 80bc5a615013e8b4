"""Task drivers. :data:`DRIVERS` maps a driver name (the job's ``driver``) to its class."""

from __future__ import annotations

from nomadd.drivers.base import Driver
from nomadd.drivers.exec import ExecDriver
from nomadd.drivers.mock import MockDriver
from nomadd.drivers.raw_exec import RawExecDriver

__all__ = ["DRIVERS", "ExecDriver", "MockDriver", "RawExecDriver"]

DRIVERS: dict[str, type[Driver]] = {cls.name: cls for cls in (RawExecDriver, ExecDriver, MockDriver)}

"""Task drivers. :data:`DRIVERS` maps a driver name (the job's ``driver``) to its class.

The registry is built on first access (PEP 562 ``__getattr__``) so that the per-task executor
(``python -m nomadd.drivers.executor``), which imports only :mod:`nomadd.drivers.logrotate`,
starts without loading the drivers and the structs package.
"""

from __future__ import annotations

# Not typing.TYPE_CHECKING: importing typing costs the executor ~20 ms of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from nomadd.drivers.base import Driver
    from nomadd.drivers.docker import DockerDriver
    from nomadd.drivers.exec import ExecDriver
    from nomadd.drivers.mock import MockDriver
    from nomadd.drivers.raw_exec import RawExecDriver

    DRIVERS: dict[str, type[Driver]]

__all__ = ["DRIVERS", "DockerDriver", "ExecDriver", "MockDriver", "RawExecDriver"]


def _registry() -> dict[str, Any]:
    from nomadd.drivers.docker import DockerDriver
    from nomadd.drivers.exec import ExecDriver
    from nomadd.drivers.mock import MockDriver
    from nomadd.drivers.raw_exec import RawExecDriver

    classes = (RawExecDriver, ExecDriver, MockDriver, DockerDriver)
    return {
        "DRIVERS": {cls.name: cls for cls in classes},
        **{cls.__name__: cls for cls in classes},
    }


def __getattr__(name: str) -> Any:
    if name in __all__:
        values = _registry()
        globals().update(values)
        return values[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

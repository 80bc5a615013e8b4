"""The task driver extension point: the :class:`Driver` ABC and the values it exchanges.

A driver starts, watches, signals, stops and recovers one kind of task. The client's task runner
holds a driver instance per driver name (see :data:`nomadd.drivers.DRIVERS`) and talks to it only
through this interface:

* ``fingerprint()`` → :class:`~nomadd.structs.node.DriverInfo` (detected / healthy), copied into the node's
  ``driver.<name>`` attribute and ``Node.Drivers``;
* ``start_task(TaskConfig)`` → :class:`TaskHandle`, which the client stores (``to_dict()``) in its
  state db so that ``recover_task(handle)`` can reattach after the agent restarted;
* ``adopt_task(TaskConfig, handle or None)``: after an agent restart, the one copy of the task to
  keep (found by its stored handle or by the launch the client recorded before starting it), every
  other copy stopped;
* ``wait_task`` → :class:`ExitResult`; ``stop_task`` (kill signal, kill timeout, then SIGKILL of the
  whole process group); ``signal_task``; ``destroy_task`` (release everything).
"""

from __future__ import annotations

import signal as _signal
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from nomadd.structs.errors import DriverError
from nomadd.structs.node import DriverInfo

__all__ = [
    "DEFAULT_KILL_SIGNAL",
    "DEFAULT_KILL_TIMEOUT_S",
    "DEFAULT_LOG_MAX_FILES",
    "DEFAULT_LOG_MAX_FILE_SIZE_MB",
    "HEALTH_DISABLED",
    "HEALTH_HEALTHY",
    "HEALTH_UNDETECTED",
    "STRIPPED_ENV_PREFIXES",
    "STRIPPED_ENV_VARS",
    "Driver",
    "DriverConfig",
    "ExecOutput",
    "ExecStream",
    "ExitResult",
    "Mount",
    "TaskConfig",
    "TaskHandle",
    "clean_env",
    "parse_signal",
]

# Nomad's task defaults (structs.DefaultLogConfig, task KillTimeout, os.Interrupt).
DEFAULT_KILL_SIGNAL = "SIGINT"
DEFAULT_KILL_TIMEOUT_S = 5.0
DEFAULT_LOG_MAX_FILES = 10
DEFAULT_LOG_MAX_FILE_SIZE_MB = 10

# Health descriptions, as Nomad's drivers word them.
HEALTH_HEALTHY = "Healthy"
HEALTH_DISABLED = "disabled"
HEALTH_UNDETECTED = "undetected"

# Never handed to a task: the agent's systemd notify socket and watchdog (docs/architecture.md §Signals).
STRIPPED_ENV_VARS = frozenset({"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"})
STRIPPED_ENV_PREFIXES = ("WATCHDOG_",)


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverConfig:
    """Per-driver agent configuration (Nomad's ``plugin "<name>" { config { ... } }``).

    ``enabled`` None means the driver's default (raw_exec: off; exec and mock: on).
    """

    enabled: bool | None = None
    #: the plugin's ``config`` table (docker: endpoint, volumes, gc...)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """A host path made visible inside a task (a host volume's ``volume_mount``).

    ``host_path`` is absolute on the client; ``task_path`` is where the task sees it (inside the
    task's root for isolating drivers, inside the container for docker).
    """

    host_path: str
    task_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskConfig:
    """Everything a driver needs to start one task.

    ``config`` is the task's driver config from the job (``command``, ``args``, or the mock
    driver's ``run_for``/``exit_code``/...). ``env`` is the full task environment; the caller
    provides ``NOMAD_ALLOC_ID``, ``NOMAD_TASK_NAME``, ``NOMAD_ALLOC_DIR`` ... and drivers strip
    :data:`STRIPPED_ENV_VARS`. ``alloc_dir`` is the shared ``<root>/<alloc_id>/alloc`` directory,
    ``task_dir`` ``<root>/<alloc_id>/<task>``, ``log_dir`` ``<root>/<alloc_id>/alloc/logs``.
    """

    alloc_id: str
    task_name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    user: str = ""
    cpu_mhz: int = 100
    memory_mb: int = 300
    #: the hard memory limit when above ``memory_mb`` (oversubscription), 0 when not set
    memory_max_mb: int = 0
    task_dir: str
    alloc_dir: str
    log_dir: str
    kill_signal: str = DEFAULT_KILL_SIGNAL
    kill_timeout_s: float = DEFAULT_KILL_TIMEOUT_S
    log_max_files: int = DEFAULT_LOG_MAX_FILES
    log_max_file_size_mb: float = DEFAULT_LOG_MAX_FILE_SIZE_MB
    #: names one start of the task; the client records it (durably) before ``start_task``
    launch_id: str = ""
    #: host paths to bind into the task (host volumes); drivers that cannot isolate refuse none
    mounts: tuple[Mount, ...] = ()

    @property
    def task_id(self) -> str:
        """A name unique on the node: ``<alloc_id>.<task_name>``."""
        return f"{self.alloc_id}.{self.task_name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskHandle:
    """A started task, serialisable to a plain dict for the client's state db.

    ``pid`` and ``start_time`` (field 22 of ``/proc/<pid>/stat``, clock ticks after boot) identify
    the task process together, so a reused pid is never mistaken for the task. ``driver_state``
    holds what the driver needs to reattach (executor pid, its files, cgroup paths).
    """

    HANDLE_VERSION: ClassVar[int] = 1

    driver: str
    alloc_id: str
    task_name: str
    pid: int
    start_time: int
    started_at: float
    driver_state: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/msgpack-safe dict; :meth:`from_dict` reverses it."""
        return {
            "version": self.HANDLE_VERSION,
            "driver": self.driver,
            "alloc_id": self.alloc_id,
            "task_name": self.task_name,
            "pid": self.pid,
            "start_time": self.start_time,
            "started_at": self.started_at,
            "driver_state": dict(self.driver_state),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskHandle:
        """Rebuild a handle stored by :meth:`to_dict`; raises DriverError when malformed."""
        try:
            version = int(data.get("version", 1))
            if version != cls.HANDLE_VERSION:
                raise DriverError(f"unsupported task handle version {version}")
            return cls(
                driver=str(data["driver"]),
                alloc_id=str(data["alloc_id"]),
                task_name=str(data["task_name"]),
                pid=int(data["pid"]),
                start_time=int(data["start_time"]),
                started_at=float(data["started_at"]),
                driver_state=dict(data.get("driver_state") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DriverError(f"malformed task handle: {err}") from err


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitResult:
    """How a task ended. ``signal`` is the terminating signal number (0 if none); ``err`` says
    why the driver could not learn the real status (e.g. the executor died), else None."""

    exit_code: int
    signal: int = 0
    oom_killed: bool = False
    err: str | None = None

    @property
    def successful(self) -> bool:
        return self.exit_code == 0 and self.signal == 0 and self.err is None


ExecOutput = Callable[[str, bytes], Awaitable[None]]  # (stream name "stdout"/"stderr", data)


class ExecStream(Protocol):
    """A command run inside a task for ``alloc exec``, as the HTTP endpoint drives it."""

    async def start(self) -> None: ...

    def resize(self, height: int, width: int) -> None: ...

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def run(self, output: ExecOutput) -> int: ...

    async def kill(self) -> None: ...


def parse_signal(sig: str | int) -> _signal.Signals:
    """``"SIGTERM"``, ``"TERM"``, ``15`` → ``signal.SIGTERM``; raises DriverError if unknown."""
    if isinstance(sig, int):
        try:
            return _signal.Signals(sig)
        except ValueError as err:
            raise DriverError(f"unknown signal {sig}") from err
    name = sig.strip().upper()
    if name.isdigit():
        return parse_signal(int(name))
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return _signal.Signals[name]
    except KeyError as err:
        raise DriverError(f"unknown signal {sig!r}") from err


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """The task environment without systemd's notify/watchdog/socket variables."""
    return {
        k: str(v)
        for k, v in env.items()
        if k not in STRIPPED_ENV_VARS and not k.startswith(STRIPPED_ENV_PREFIXES)
    }


class Driver(ABC):
    """A task driver. Subclass it and register the class in :data:`nomadd.drivers.DRIVERS`.

    Instances are cheap and hold no state that recovery needs: everything lives in the
    :class:`TaskHandle` and on disk, so a new instance (after an agent restart) can
    ``recover_task`` handles that an older one started.
    """

    name: ClassVar[str]
    #: how often the client re-runs :meth:`fingerprint` (Nomad: 30 s for exec and raw_exec)
    fingerprint_period_s: ClassVar[float] = 30.0
    #: whether the driver runs unless configured otherwise
    enabled_by_default: ClassVar[bool] = True

    def __init__(self, config: DriverConfig | None = None) -> None:
        self.config = config or DriverConfig()

    @property
    def enabled(self) -> bool:
        if self.config.enabled is None:
            return self.enabled_by_default
        return self.config.enabled

    @abstractmethod
    def fingerprint(self) -> DriverInfo:
        """Detect the driver on this host. Blocking (reads /proc, /sys): call via to_thread."""

    @abstractmethod
    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        """Start the task; raises DriverError when it could not be started."""

    @abstractmethod
    async def wait_task(self, handle: TaskHandle) -> ExitResult:
        """Wait until the task has exited and return how it ended."""

    @abstractmethod
    async def stop_task(
        self, handle: TaskHandle, timeout: float, signal: str | int = DEFAULT_KILL_SIGNAL
    ) -> None:
        """Send ``signal``, wait up to ``timeout`` seconds, then SIGKILL the process group."""

    @abstractmethod
    async def signal_task(self, handle: TaskHandle, sig: str | int) -> None:
        """Send a signal to the task's main process."""

    @abstractmethod
    async def recover_task(self, handle: TaskHandle) -> bool:
        """Reattach to a task started before the agent restarted.

        True when the task is still running or has exited with a collectable status (then
        :meth:`wait_task` returns it); False when nothing of it can be found.
        """

    async def adopt_task(self, cfg: TaskConfig, handle: TaskHandle | None) -> TaskHandle | None:
        """After an agent restart: the handle of the copy of the task to keep, or None.

        ``handle`` is the stored one (None when the agent died before storing it);
        ``cfg.launch_id`` the last launch the client recorded. A driver whose tasks outlive the
        agent finds them by their marks too, keeps one (running, or exited with a status to
        collect) and stops every other copy. This default only recovers the stored handle.
        """
        if handle is not None and await self.recover_task(handle):
            return handle
        return None

    def exec_session(
        self, handle: TaskHandle, command: Sequence[str], *, tty: bool, size: tuple[int, int]
    ) -> ExecStream | None:
        """A driver whose tasks are not host processes (docker) runs ``alloc exec`` itself;
        None means the client runs the command next to the task's processes."""
        return None

    @abstractmethod
    async def destroy_task(self, handle: TaskHandle) -> None:
        """Kill the task if it still runs and release driver resources (cgroups, state files)."""

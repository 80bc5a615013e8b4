"""The ``docker`` driver: tasks as containers, through the Docker Engine API on a unix socket.

It works with Docker Engine and with podman's compatible service (``podman system service``).
Per task: the image is pulled unless present (or ``force_pull``), a container
``<task>-<alloc_id>`` is created from :func:`~.config.container_spec` and started, and its logs
are copied into the task's log files (:mod:`.logs`). The handle's ``driver_state`` holds the
container ID, so after an agent restart :meth:`DockerDriver.recover_task` /
:meth:`DockerDriver.adopt_task` reattach to the running container (never start another) and
resume its logs where they stopped. ``adopt_task`` also finds the task's containers by their
labels (the agent may have died before storing the handle) and removes every other copy.

Stop: the task's kill signal, ``kill_timeout``, then SIGKILL. Destroy removes the container.
An image no task uses any more is removed ``gc.image_delay`` later (``gc.image``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import http.client
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, ClassVar, ParamSpec, TypeVar

import aiodocker
import aiohttp

from nomadd.drivers import proc
from nomadd.drivers.allocdir import executor_dir_for
from nomadd.drivers.base import (
    DEFAULT_KILL_SIGNAL,
    HEALTH_DISABLED,
    HEALTH_HEALTHY,
    HEALTH_UNDETECTED,
    Driver,
    DriverConfig,
    ExecStream,
    ExitResult,
    TaskConfig,
    TaskHandle,
    parse_signal,
)
from nomadd.drivers.docker.config import (
    LABEL_ALLOC_ID,
    LABEL_LAUNCH_ID,
    LABEL_TASK_NAME,
    ContainerSpec,
    PluginConfig,
    container_name,
    container_spec,
    split_image,
)
from nomadd.drivers.docker.exec import DockerExecSession
from nomadd.drivers.docker.logs import LogTarget, stream_logs
from nomadd.helper.supervisor import Supervisor
from nomadd.structs.errors import DriverError
from nomadd.structs.node import DriverInfo
from nomadd.structs.timeutil import format_time

logger = logging.getLogger(__name__)

__all__ = ["DockerDriver"]

FINGERPRINT_TIMEOUT_S = 5.0
# After the container exited, how long its log stream may take to drain into the files.
LOG_DRAIN_S = 5.0
# After SIGKILL, how long to wait for the container to be reported exited.
KILL_WAIT_S = 10.0
POSITION_FILE = "docker-logs.json"
WAIT_RETRY_S = 1.0  # a wait the daemon broke off is asked again after this
BYTES_PER_MB = 1024 * 1024


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _get_json(path: str, url: str) -> Any:
    """Blocking GET on the daemon's socket (fingerprinting runs in a thread)."""
    conn = _UnixHTTPConnection(path, FINGERPRINT_TIMEOUT_S)
    try:
        conn.request("GET", url)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError(f"{url}: HTTP {resp.status}")
        return json.loads(body)
    finally:
        conn.close()


P = ParamSpec("P")
R = TypeVar("R")


def _daemon_errors(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """A daemon that cannot be reached (or hangs up) is a DriverError, never a crash."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except aiohttp.ClientError as err:
            raise DriverError(f"docker daemon unreachable: {err}") from err

    return wrapper


def _labels(container: Any) -> Mapping[str, str]:
    """The labels of a container as listed (``GET /containers/json``)."""
    labels = getattr(container, "_container", {}).get("Labels")
    return labels if isinstance(labels, Mapping) else {}


def _message(err: aiodocker.DockerError) -> str:
    msg = err.message
    if isinstance(msg, Mapping):
        msg = msg.get("message", msg)
    return str(msg).strip()


class DockerDriver(Driver):
    name: ClassVar[str] = "docker"

    def __init__(self, config: DriverConfig | None = None) -> None:
        super().__init__(config)
        enabled = self.config.options.get("enabled")
        if self.config.enabled is None and isinstance(enabled, bool):
            self.config = dataclasses.replace(self.config, enabled=enabled)
        self.config_error = ""
        try:
            self.plugin = PluginConfig.parse(self.config.options)
        except DriverError as err:
            self.plugin, self.config_error = PluginConfig(), str(err)
        self._docker: aiodocker.Docker | None = None
        self._tasks = Supervisor("docker-driver")
        self._logs: dict[str, asyncio.Task[None]] = {}  # container ID -> its log copier
        self._image_users: dict[str, set[str]] = {}  # image ID -> container IDs using it
        self._image_gc: dict[str, asyncio.Task[None]] = {}

    # ---- the daemon ----------------------------------------------------------------------
    def _client(self) -> aiodocker.Docker:
        if self.config_error:
            raise DriverError(self.config_error)
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self.plugin.endpoint)
        return self._docker

    def fingerprint(self) -> DriverInfo:
        now = format_time(time.time_ns())

        def undetected(why: str) -> DriverInfo:
            return DriverInfo(detected=False, healthy=False, health_description=why, update_time=now)

        if not self.enabled:
            return undetected(HEALTH_DISABLED)
        if self.config_error:
            return undetected(f"{HEALTH_UNDETECTED}: {self.config_error}")
        try:
            path = self.plugin.socket_path
        except DriverError as err:
            return undetected(f"{HEALTH_UNDETECTED}: {err}")
        if not os.path.exists(path):
            return undetected(f"{HEALTH_UNDETECTED}: Failed to connect to docker daemon at {path}")
        try:
            version = _get_json(path, "/version")
            info = _get_json(path, "/info")
        except (OSError, ValueError, http.client.HTTPException) as err:
            return undetected(f"{HEALTH_UNDETECTED}: Failed to connect to docker daemon: {err}")
        runtimes = info.get("Runtimes") if isinstance(info, dict) else None
        attributes = {
            "driver.docker": "1",
            "driver.docker.version": str(version.get("Version", "")),
            "driver.docker.os_type": str(info.get("OSType", "linux")),
            "driver.docker.runtimes": ",".join(sorted(runtimes or {})),
            "driver.docker.volumes.enabled": "true" if self.plugin.volumes_enabled else "false",
            "driver.docker.privileged.enabled": "true" if self.plugin.allow_privileged else "false",
        }
        return DriverInfo(
            detected=True,
            healthy=True,
            health_description=HEALTH_HEALTHY,
            attributes=attributes,
            update_time=now,
        )

    # ---- images --------------------------------------------------------------------------
    async def _image_id(self, spec: ContainerSpec) -> str:
        """The local image of the task, pulled when missing or when ``force_pull``."""
        docker = self._client()
        if not spec.force_pull:
            try:
                return str((await docker.images.inspect(spec.image))["Id"])
            except aiodocker.DockerError as err:
                if err.status != 404:
                    raise DriverError(f"Failed to inspect image `{spec.image}`: {_message(err)}") from err
        name, tag = split_image(spec.image)
        try:
            async with asyncio.timeout(spec.pull_timeout_s):
                result = await docker.images.pull(name, tag=tag or None, auth=dict(spec.auth or {}) or None)
        except TimeoutError:
            raise DriverError(
                f"Failed to pull `{spec.image}`: timed out after {spec.pull_timeout_s:g}s"
            ) from None
        except aiodocker.DockerError as err:
            raise DriverError(f"Failed to pull `{spec.image}`: {_message(err)}") from err
        for line in result if isinstance(result, list) else []:
            if isinstance(line, dict) and line.get("error"):
                raise DriverError(f"Failed to pull `{spec.image}`: {line['error']}")
        try:
            return str((await docker.images.inspect(spec.image))["Id"])
        except aiodocker.DockerError as err:
            raise DriverError(f"Failed to pull `{spec.image}`: {_message(err)}") from err

    def _use_image(self, image_id: str, container_id: str) -> None:
        if not image_id:
            return
        self._image_users.setdefault(image_id, set()).add(container_id)
        timer = self._image_gc.pop(image_id, None)
        if timer is not None:
            timer.cancel()

    def _release_image(self, image_id: str, container_id: str) -> None:
        users = self._image_users.get(image_id)
        if users is None:
            return
        users.discard(container_id)
        if users or not self.plugin.gc_image:
            return
        del self._image_users[image_id]
        if image_id not in self._image_gc:
            self._image_gc[image_id] = self._tasks.spawn(
                self._gc_image(image_id), f"docker-image-gc-{image_id[:19]}"
            )

    async def _gc_image(self, image_id: str) -> None:
        """Remove an image nobody used for ``gc.image_delay`` (still in use elsewhere: kept)."""
        try:
            await asyncio.sleep(self.plugin.gc_image_delay_s)
            if self._image_users.get(image_id):
                return
            try:
                await self._client().images.delete(image_id)
                logger.info("image removed image_id=%s", image_id[:19])
            except aiodocker.DockerError as err:
                logger.info("image not removed image_id=%s err=%s", image_id[:19], _message(err))
            except aiohttp.ClientError as err:
                logger.warning("image not removed image_id=%s err=%s", image_id[:19], err)
        finally:
            if self._image_gc.get(image_id) is asyncio.current_task():
                del self._image_gc[image_id]

    # ---- tasks ---------------------------------------------------------------------------
    @_daemon_errors
    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        if not self.enabled:
            raise DriverError("driver docker is disabled on this node")
        spec = container_spec(cfg, self.plugin)
        docker = self._client()
        image_id = await self._image_id(spec)
        name = container_name(cfg)
        state_dir = executor_dir_for(cfg.alloc_dir, cfg.task_name)
        position = os.path.join(state_dir, POSITION_FILE)

        def prepare() -> None:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            os.makedirs(cfg.log_dir, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(position)  # a new container's logs start from its beginning

        await asyncio.to_thread(prepare)
        await self._remove(name)  # an earlier launch's container (it has ended)
        try:
            container = await docker.containers.create(dict(spec.body), name=name)
        except aiodocker.DockerError as err:
            raise DriverError(f"Failed to create container: {_message(err)}") from err
        try:
            await container.start()
            info = await container.show()
        except aiodocker.DockerError as err:
            await self._remove(container.id)
            raise DriverError(f"Failed to start container {container.id[:12]}: {_message(err)}") from err
        target = LogTarget(
            log_dir=cfg.log_dir,
            task_name=cfg.task_name,
            max_files=cfg.log_max_files,
            max_bytes=int(cfg.log_max_file_size_mb * BYTES_PER_MB),
            position_file=position,
        )
        handle = self._handle(cfg.alloc_id, cfg.task_name, info, target, cfg.launch_id)
        self._follow(handle)
        self._use_image(image_id, container.id)
        logger.info(
            "container started alloc_id=%s task=%s container=%s image=%s",
            cfg.alloc_id,
            cfg.task_name,
            container.id[:12],
            spec.image,
        )
        return handle

    def _handle(
        self, alloc_id: str, task_name: str, info: Mapping[str, Any], target: LogTarget, launch_id: str
    ) -> TaskHandle:
        pid = int(info.get("State", {}).get("Pid") or 0)
        return TaskHandle(
            driver=self.name,
            alloc_id=alloc_id,
            task_name=task_name,
            pid=pid,
            start_time=proc.start_time_of(pid) if pid > 0 else 0,
            started_at=time.time(),
            driver_state={
                "container_id": str(info["Id"]),
                "image_id": str(info.get("Image", "")),
                "launch_id": launch_id,
                "log_dir": target.log_dir,
                "log_max_files": target.max_files,
                "log_max_bytes": target.max_bytes,
                "log_position": target.position_file,
            },
        )

    @staticmethod
    def _container_id(handle: TaskHandle) -> str:
        cid = handle.driver_state.get("container_id")
        if not isinstance(cid, str) or not cid:
            raise DriverError(f"task {handle.task_name}: handle without a container ID")
        return cid

    def _follow(self, handle: TaskHandle) -> None:
        """Copy the container's logs into the task's files (once per container)."""
        cid = self._container_id(handle)
        running = self._logs.get(cid)
        if running is not None and not running.done():
            return
        st = handle.driver_state
        target = LogTarget(
            log_dir=str(st["log_dir"]),
            task_name=handle.task_name,
            max_files=int(st["log_max_files"]),
            max_bytes=int(st["log_max_bytes"]),
            position_file=str(st["log_position"]),
        )
        self._logs[cid] = self._tasks.spawn(
            stream_logs(self._client(), cid, target), f"docker-logs-{cid[:12]}"
        )

    async def _remove(self, ref: str) -> None:
        with contextlib.suppress(aiodocker.DockerError):
            await self._client().containers.container(ref).delete(force=True, v=True)

    async def _inspect(self, cid: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = await self._client().containers.container(cid).show()
            return info
        except aiodocker.DockerError as err:
            if err.status == 404:
                return None
            raise DriverError(f"Failed to inspect container {cid[:12]}: {_message(err)}") from err

    async def wait_task(self, handle: TaskHandle) -> ExitResult:
        cid = self._container_id(handle)
        container = self._client().containers.container(cid)
        while True:
            try:
                answer = await container.wait()
            except aiodocker.DockerError as err:
                if err.status == 404:
                    return ExitResult(exit_code=-1, err="container is gone")
                logger.warning("container wait failed container=%s err=%s", cid[:12], _message(err))
                await asyncio.sleep(WAIT_RETRY_S)
                continue
            except aiohttp.ClientError as err:  # the daemon restarts: the container may live on
                logger.warning("container wait interrupted container=%s err=%s", cid[:12], err)
                await asyncio.sleep(WAIT_RETRY_S)
                continue
            try:
                info = await self._inspect(cid)  # None: already removed by a stop
            except (DriverError, aiohttp.ClientError) as err:
                logger.warning("container inspect failed container=%s err=%s", cid[:12], err)
                await asyncio.sleep(WAIT_RETRY_S)
                continue
            state = info.get("State", {}) if info is not None else {}
            if not state.get("Running"):
                break
        await self._drain_logs(cid)
        code = answer.get("StatusCode") if isinstance(answer, dict) else None
        if code is None:
            code = state.get("ExitCode") or 0
        return ExitResult(exit_code=int(code), oom_killed=bool(state.get("OOMKilled")))

    async def _kill(self, cid: str, sig: str) -> bool:
        """Send a signal; False when the container does not run."""
        try:
            await self._client().containers.container(cid).kill(signal=sig)
            return True
        except aiodocker.DockerError as err:
            if err.status in (404, 409):
                return False
            raise DriverError(f"Failed to signal container {cid[:12]}: {_message(err)}") from err

    async def _wait_exit(self, cid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            info = await self._inspect(cid)
            if info is None or not info.get("State", {}).get("Running"):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.1)

    @_daemon_errors
    async def signal_task(self, handle: TaskHandle, sig: str | int) -> None:
        signum = parse_signal(sig)
        if not await self._kill(self._container_id(handle), signum.name):
            raise DriverError(f"task {handle.task_name} is not running")

    @_daemon_errors
    async def stop_task(
        self, handle: TaskHandle, timeout: float, signal: str | int = DEFAULT_KILL_SIGNAL
    ) -> None:
        cid = self._container_id(handle)
        signum = parse_signal(signal)
        if await self._kill(cid, signum.name) and not await self._wait_exit(cid, max(0.0, timeout)):
            logger.info(
                "container ignored kill signal, sending SIGKILL container=%s sig=%s timeout_s=%.1f",
                cid[:12],
                signum.name,
                timeout,
            )
            await self._kill(cid, "SIGKILL")
            if not await self._wait_exit(cid, KILL_WAIT_S):
                logger.warning("container did not exit after SIGKILL container=%s", cid[:12])
                return
        # stopped for good or for a restart (which makes a new container): as Nomad, remove it
        # once its last lines are in the log files
        await self._drain_logs(cid)
        await self.destroy_task(handle)

    async def _drain_logs(self, cid: str) -> None:
        copier = self._logs.get(cid)
        if copier is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(copier), LOG_DRAIN_S)

    async def recover_task(self, handle: TaskHandle) -> bool:
        try:
            cid = self._container_id(handle)
            info = await self._inspect(cid)
        except (DriverError, aiohttp.ClientError) as err:
            logger.warning("task recovery failed task=%s err=%s", handle.task_name, err)
            return False
        if info is None:
            return False
        self._use_image(str(info.get("Image", "")), cid)
        if info.get("State", {}).get("Running") or info.get("State", {}).get("Status") == "exited":
            self._follow(handle)
            return True
        return False

    @_daemon_errors
    async def adopt_task(self, cfg: TaskConfig, handle: TaskHandle | None) -> TaskHandle | None:
        """The container to keep after a restart: the stored handle's, else the last recorded
        launch's (found by labels); every other container of the task is removed."""
        filters = json.dumps(
            {"label": [f"{LABEL_ALLOC_ID}={cfg.alloc_id}", f"{LABEL_TASK_NAME}={cfg.task_name}"]}
        )
        try:
            found = await self._client().containers.list(all=True, filters=filters)
        except aiodocker.DockerError as err:
            raise DriverError(f"Failed to list containers: {_message(err)}") from err
        by_launch = None
        if cfg.launch_id:
            by_launch = next((c for c in found if _labels(c).get(LABEL_LAUNCH_ID) == cfg.launch_id), None)
        keep: TaskHandle | None = None
        stored = handle.driver_state.get("container_id") if handle is not None else None
        ours = handle is not None and (by_launch is None or by_launch.id == stored)
        if ours and handle is not None and await self.recover_task(handle):
            keep = handle
        if keep is None and by_launch is not None and (info := await self._inspect(by_launch.id)) is not None:
            target = LogTarget(
                log_dir=cfg.log_dir,
                task_name=cfg.task_name,
                max_files=cfg.log_max_files,
                max_bytes=int(cfg.log_max_file_size_mb * BYTES_PER_MB),
                position_file=os.path.join(executor_dir_for(cfg.alloc_dir, cfg.task_name), POSITION_FILE),
            )
            candidate = self._handle(cfg.alloc_id, cfg.task_name, info, target, cfg.launch_id)
            if await self.recover_task(candidate):
                keep = candidate
        kept = keep.driver_state.get("container_id") if keep is not None else None
        for c in found:
            if c.id != kept:
                logger.warning(
                    "removing a stray container of a task task=%s container=%s", cfg.task_id, c.id[:12]
                )
                await self._remove(c.id)
        if keep is not None:
            logger.info("container reattached task=%s container=%s", cfg.task_id, str(kept)[:12])
        return keep

    @_daemon_errors
    async def destroy_task(self, handle: TaskHandle) -> None:
        cid = self._container_id(handle)
        await self._remove(cid)
        copier = self._logs.pop(cid, None)
        if copier is not None:
            copier.cancel()
        self._release_image(str(handle.driver_state.get("image_id", "")), cid)

    def exec_session(
        self, handle: TaskHandle, command: Sequence[str], *, tty: bool, size: tuple[int, int]
    ) -> ExecStream | None:
        return DockerExecSession(self._client(), self._container_id(handle), command, tty=tty, size=size)

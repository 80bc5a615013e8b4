"""Shared implementation of the process drivers (raw_exec, exec) on top of the executor.

Each start of a task is a *launch* with its own ID (``TaskConfig.launch_id``, recorded by the
client before the start). The driver writes ``<launch>.spec.json`` into the task's executor dir,
starts ``python -m nomadd.drivers.executor <spec> FD <launch>`` in a new session (it
double-forks, so it is not our child) and reads its one-line handshake from a pipe; the executor
also publishes it as ``<launch>.launch.json``. From then on the driver talks only to processes
and files:

* ``wait_task``: wait (pidfd, else polling) for the executor to exit, then read
  ``<launch>.exit.json``;
* ``stop_task``: kill signal to the task's process group, wait up to the timeout for the task,
  then SIGKILL the group (and every process of its cgroups), then wait for the executor;
* ``recover_task``: the handle's executor (pid + start time) still runs, or its status exists;
* ``adopt_task`` (after an agent restart, with or without a stored handle): every executor of
  the task is found by its command line and waited for until it has published its launch
  record; one copy is kept (the recorded launch first), the others are killed, and so is every
  process with the task's env marks outside the kept task's session (:mod:`.adopt`).

Handles carry ``executor_pid``, ``executor_start_time``, ``executor_dir``, ``cgroups``,
``launch_id`` and ``status_file`` in ``driver_state`` (handles from before launch IDs have
neither of the last two: their status file is ``exit.json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nomadd
from nomadd.drivers import adopt, cgroups, proc
from nomadd.drivers.allocdir import executor_dir_for
from nomadd.drivers.base import (
    DEFAULT_KILL_SIGNAL,
    Driver,
    ExitResult,
    TaskConfig,
    TaskHandle,
    clean_env,
    parse_signal,
)
from nomadd.structs.errors import DriverError

logger = logging.getLogger(__name__)

# How long the executor may take to start the task and answer (python start-up is ~50 ms).
HANDSHAKE_TIMEOUT_S = 10.0
# After SIGKILL, how long to wait for the executor to collect the task and write its status, and
# for the processes an adoption killed to be gone.
KILL_WAIT_S = 5.0
SPEC_SUFFIX = ".spec.json"
RECORD_SUFFIX = ".launch.json"
STATUS_SUFFIX = ".exit.json"
STATUS_FILE = "exit.json"  # of handles stored before launch IDs
LEGACY_FILES = ("spec.json", STATUS_FILE)
# How often adoption looks again for the launch record of an executor that is still starting.
ADOPT_POLL_S = 0.05
_LAUNCH_ID = re.compile(r"[0-9a-f]{8,64}")
EXECUTOR_LOG = "executor.log"
BYTES_PER_MB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchPlan:
    """What a concrete driver decides for one task: identity and limits."""

    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None
    cgroups: cgroups.CgroupPlan = field(default_factory=lambda: cgroups.CgroupPlan(version="none"))
    rlimits: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: the task's isolation spec (:mod:`nomadd.drivers.isolation`), None for none
    isolation: Mapping[str, Any] | None = None
    #: env entries that replace the task's (the task's dirs as an isolated task sees them)
    env: Mapping[str, str] = field(default_factory=dict)


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(nomadd.__file__)))


def _executor_env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C.UTF-8"}
    env["PYTHONPATH"] = _package_root()
    return env


def _launch_executor(executor_dir: str, spec: dict[str, Any], launch_id: str) -> dict[str, Any]:
    """Blocking: write the spec, start the executor, read its handshake."""
    spec_path = os.path.join(executor_dir, launch_id + SPEC_SUFFIX)
    fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    r, w = os.pipe()
    try:
        with open(os.path.join(executor_dir, EXECUTOR_LOG), "ab") as log:
            first = subprocess.Popen(
                [sys.executable, "-m", adopt.EXECUTOR_MODULE, spec_path, str(w), launch_id],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(w,),
                start_new_session=True,
                cwd="/",
                env=_executor_env(),
            )
        os.close(w)
        w = -1
        first.wait(HANDSHAKE_TIMEOUT_S)
        buf = b""
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise DriverError("executor did not answer in time")
            chunk = os.read(r, 4096)
            if not chunk:
                break
            buf += chunk
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DriverError(f"cannot start executor: {err}") from err
    finally:
        if w >= 0:
            os.close(w)
        os.close(r)
    if not buf:
        raise DriverError(f"executor exited without a handshake; see {executor_dir}/{EXECUTOR_LOG}")
    try:
        msg: dict[str, Any] = json.loads(buf)
    except ValueError as err:
        raise DriverError(f"bad executor handshake {buf[:200]!r}") from err
    return msg


def read_status(executor_dir: str, status_file: str = STATUS_FILE) -> ExitResult | None:
    try:
        with open(os.path.join(executor_dir, status_file)) as f:
            data = json.load(f)
        return ExitResult(
            exit_code=int(data["exit_code"]),
            signal=int(data.get("signal", 0)),
            oom_killed=bool(data.get("oom_killed", False)),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        return ExitResult(exit_code=-1, err=f"unreadable exit status: {err}")


def _clear_launches(executor_dir: str) -> None:
    """Remove the files of earlier launches (all of them have ended when a new one starts)."""
    for name in os.listdir(executor_dir):
        if name.endswith((SPEC_SUFFIX, RECORD_SUFFIX, STATUS_SUFFIX)) or name in LEGACY_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(executor_dir, name))


def _read_record(executor_dir: str, launch_id: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(executor_dir, launch_id + RECORD_SUFFIX)) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("ok") else None


def _survey(
    executor_dir: str, wanted: str, deadline: float
) -> tuple[dict[str, dict[str, Any]], list[adopt.ProcInfo]]:
    """Blocking: the launch records of the task's live executors, and the executors that have
    none. The executor of launch ``wanted`` (the last one recorded), if still starting its task,
    gets until ``deadline`` to publish its record; others are older launches, not waited for."""
    while True:
        procs = adopt.processes()
        records: dict[str, dict[str, Any]] = {}
        silent: list[tuple[adopt.ProcInfo, str]] = []
        for info, launch_id in adopt.executors(procs, executor_dir):
            rec = _read_record(executor_dir, launch_id) if launch_id else None
            if rec is None:
                silent.append((info, launch_id))
            else:
                records[launch_id] = rec
        if not wanted or all(launch_id != wanted for _, launch_id in silent) or time.monotonic() >= deadline:
            return records, [info for info, _ in silent]
        time.sleep(ADOPT_POLL_S)


def _kill_strays(
    silent: list[adopt.ProcInfo], alloc_id: str, task_name: str, keep_sid: int
) -> list[adopt.ProcInfo]:
    """Blocking: kill the task's executors that never published a launch record (and what they
    started), and every process with the task's env marks outside the session of the copy kept
    (``keep_sid``, 0 when none runs); returns the processes signalled."""
    procs = adopt.processes()
    killed: list[adopt.ProcInfo] = []
    for info in silent:
        logger.warning("killing a task executor that never published its launch pid=%d", info.pid)
        killed += adopt.kill_tree(procs, info)
    for p in adopt.task_processes(procs, alloc_id, task_name):
        if p.sid != keep_sid:
            logger.warning("killing an untracked task process task=%s.%s pid=%d", alloc_id, task_name, p.pid)
            killed += adopt.kill_tree(procs, p)
    return killed


class ExecutorDriver(Driver):
    """A driver whose tasks run under a per-task executor process. Subclasses decide
    :meth:`plan` (user, cgroups) and :meth:`fingerprint`."""

    def plan(self, cfg: TaskConfig) -> LaunchPlan:
        return LaunchPlan()

    def release(self, plan_dirs: list[str]) -> None:
        """Remove what :meth:`plan` created (blocking)."""
        cgroups.remove(plan_dirs)

    def _check_enabled(self) -> None:
        if not self.enabled:
            raise DriverError(f"driver {self.name} is disabled on this node")

    async def start_task(self, cfg: TaskConfig) -> TaskHandle:
        self._check_enabled()
        command = cfg.config.get("command")
        if not isinstance(command, str) or not command:
            raise DriverError(f"task {cfg.task_name}: driver config needs a string 'command'")
        args = cfg.config.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise DriverError(f"task {cfg.task_name}: 'args' must be a list of strings")
        launch_id = cfg.launch_id or uuid.uuid4().hex
        if not _LAUNCH_ID.fullmatch(launch_id):
            raise DriverError(f"task {cfg.task_name}: bad launch id {launch_id!r}")
        executor_dir = executor_dir_for(cfg.alloc_dir, cfg.task_name)
        launch = await asyncio.to_thread(self.plan, cfg)
        handle_state: dict[str, Any] = {
            "executor_dir": executor_dir,
            "cgroups": list(launch.cgroups.dirs),
            "cgroup_version": launch.cgroups.version,
            "launch_id": launch_id,
            "status_file": launch_id + STATUS_SUFFIX,
        }
        if launch.isolation is not None:
            handle_state["isolation"] = dict(launch.isolation)
        spec = {
            "command": command,
            "args": args,
            "env": clean_env({**cfg.env, **launch.env}),
            "cwd": cfg.task_dir,
            "isolation": launch.isolation,
            "uid": launch.uid,
            "gid": launch.gid,
            "groups": launch.groups,
            "log_dir": cfg.log_dir,
            "task_name": cfg.task_name,
            "max_files": cfg.log_max_files,
            "max_file_size_bytes": int(cfg.log_max_file_size_mb * BYTES_PER_MB),
            "cgroup_procs": list(launch.cgroups.procs_files),
            "oom_files": list(launch.cgroups.oom_files),
            "rlimits": {k: list(v) for k, v in launch.rlimits.items()},
            "status_path": os.path.join(executor_dir, launch_id + STATUS_SUFFIX),
            "launch_record": os.path.join(executor_dir, launch_id + RECORD_SUFFIX),
            "handle_state": handle_state,
        }

        def _start() -> dict[str, Any]:
            os.makedirs(executor_dir, mode=0o700, exist_ok=True)
            os.makedirs(cfg.log_dir, exist_ok=True)
            _clear_launches(executor_dir)
            return _launch_executor(executor_dir, spec, launch_id)

        dirs = list(launch.cgroups.dirs)
        starting = asyncio.ensure_future(asyncio.to_thread(_start))
        try:
            msg = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The thread may still start the task; nobody would get its handle: kill it then.
            starting.add_done_callback(lambda fut: self._abandon(fut, dirs))
            raise
        except BaseException:
            await asyncio.to_thread(self.release, dirs)
            raise
        if not msg.get("ok"):
            await asyncio.to_thread(self.release, list(launch.cgroups.dirs))
            raise DriverError(f"task {cfg.task_name} failed to start: {msg.get('error')}")
        handle = self._handle_from(cfg, msg)
        logger.info(
            "task started driver=%s alloc_id=%s task=%s pid=%d",
            self.name,
            cfg.alloc_id,
            cfg.task_name,
            handle.pid,
        )
        return handle

    def _handle_from(self, cfg: TaskConfig, msg: Mapping[str, Any]) -> TaskHandle:
        """The handle of a launch from its handshake or launch record; DriverError if malformed."""
        try:
            return TaskHandle(
                driver=self.name,
                alloc_id=cfg.alloc_id,
                task_name=cfg.task_name,
                pid=int(msg["pid"]),
                start_time=int(msg["start_time"]),
                started_at=float(msg.get("started_at") or time.time()),
                driver_state={
                    **dict(msg.get("handle_state") or {}),
                    "executor_pid": int(msg["executor_pid"]),
                    "executor_start_time": int(msg["executor_start_time"]),
                    # an isolated task's namespaces are its init's, the handle's pid
                    "init_pid": int(msg["pid"]),
                },
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DriverError(f"malformed executor answer: {err}") from err

    def _abandon(self, fut: asyncio.Future[dict[str, Any]], dirs: list[str]) -> None:
        """Done-callback of a start cancelled mid-way: kill what it started, free its cgroups."""
        if not fut.cancelled() and fut.exception() is None:
            msg = fut.result()
            if msg.get("ok"):
                logger.warning("killing task whose start was cancelled pid=%s", msg.get("pid"))
                proc.kill_group(int(msg["pid"]), 9)
        asyncio.get_running_loop().run_in_executor(None, self.release, dirs)

    @staticmethod
    def _executor(handle: TaskHandle) -> tuple[int, int, str]:
        st = handle.driver_state
        try:
            return int(st["executor_pid"]), int(st["executor_start_time"]), str(st["executor_dir"])
        except (KeyError, TypeError, ValueError) as err:
            raise DriverError(f"task handle without executor state: {err}") from err

    async def wait_task(self, handle: TaskHandle) -> ExitResult:
        epid, estart, edir = self._executor(handle)
        await proc.wait_exit(epid, estart)
        result = await asyncio.to_thread(read_status, edir, self._status_file(handle))
        if result is not None:
            return result
        if await proc.alive(handle.pid, handle.start_time):
            # The executor died (killed?) while the task still runs: wait for the task alone.
            logger.warning("executor gone, task still running pid=%d", handle.pid)
            await proc.wait_exit(handle.pid, handle.start_time)
        return ExitResult(exit_code=-1, err="executor exited without an exit status")

    async def signal_task(self, handle: TaskHandle, sig: str | int) -> None:
        signum = parse_signal(sig)
        if not await asyncio.to_thread(proc.kill_pid, handle.pid, handle.start_time, signum):
            raise DriverError(f"task {handle.task_name} is not running")

    async def stop_task(
        self, handle: TaskHandle, timeout: float, signal: str | int = DEFAULT_KILL_SIGNAL
    ) -> None:
        signum = parse_signal(signal)
        epid, estart, _ = self._executor(handle)
        if await proc.alive(handle.pid, handle.start_time):
            proc.kill_group(handle.pid, signum)
            exited = await proc.wait_exit(handle.pid, handle.start_time, max(0.0, timeout))
            if not exited:
                logger.info(
                    "task ignored kill signal, sending SIGKILL task=%s pid=%d sig=%s timeout_s=%.1f",
                    handle.task_name,
                    handle.pid,
                    proc.signal_name(signum),
                    timeout,
                )
        # Whatever is left of the task's process group (and cgroups) goes now.
        if await asyncio.to_thread(proc.group_is_ours, handle.pid, handle.start_time):
            proc.kill_group(handle.pid, 9)
        await asyncio.to_thread(cgroups.kill_all, list(handle.driver_state.get("cgroups") or []))
        if not await proc.wait_exit(epid, estart, KILL_WAIT_S):
            logger.warning("executor did not exit after task kill pid=%d", epid)

    async def recover_task(self, handle: TaskHandle) -> bool:
        try:
            epid, estart, edir = self._executor(handle)
        except DriverError:
            return False
        if await proc.alive(epid, estart):
            return True
        if await asyncio.to_thread(os.path.exists, os.path.join(edir, self._status_file(handle))):
            return True
        return await proc.alive(handle.pid, handle.start_time)

    @staticmethod
    def _status_file(handle: TaskHandle) -> str:
        return os.path.basename(str(handle.driver_state.get("status_file") or STATUS_FILE))

    async def _running(self, handle: TaskHandle) -> bool:
        try:
            epid, estart, _ = self._executor(handle)
        except DriverError:
            return False
        return await proc.alive(epid, estart) or await proc.alive(handle.pid, handle.start_time)

    async def adopt_task(self, cfg: TaskConfig, handle: TaskHandle | None) -> TaskHandle | None:
        executor_dir = executor_dir_for(cfg.alloc_dir, cfg.task_name)
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        records, silent = await asyncio.to_thread(_survey, executor_dir, cfg.launch_id, deadline)
        stored_launch = handle.driver_state.get("launch_id") if handle is not None else None
        running: list[TaskHandle] = []
        for launch_id, rec in records.items():
            if handle is not None and launch_id == stored_launch:
                running.append(handle)
                continue
            with contextlib.suppress(DriverError):
                running.append(self._handle_from(cfg, rec))
        last: TaskHandle | None = None  # the recorded launch, when its executor is gone
        if cfg.launch_id and cfg.launch_id not in records and cfg.launch_id != stored_launch:
            last_rec = await asyncio.to_thread(_read_record, executor_dir, cfg.launch_id)
            if last_rec is not None:
                with contextlib.suppress(DriverError):
                    last = self._handle_from(cfg, last_rec)
        for h in (handle, last):  # executor gone but the task still runs: keep it in the running
            if h is not None and h.driver_state.get("launch_id") not in records and await self._running(h):
                running.append(h)
        keep = _choose(running, cfg.launch_id, stored_launch)
        # an executor from before launch records runs the stored handle's task: not a stray
        silent = [p for p in silent if all(p.pid != h.driver_state.get("executor_pid") for h in running)]
        keep_sid = keep.pid if keep is not None else 0
        if keep is None:  # nothing runs: the launch that ended while the agent was away, if any
            for h in (last, handle):
                if h is not None and await self.recover_task(h):
                    keep = h
                    break
        for other in running:
            if other is not keep:
                await self._stop_copy(other)
        killed = await asyncio.to_thread(_kill_strays, silent, cfg.alloc_id, cfg.task_name, keep_sid)
        # gone before the caller may start the task again: no moment with two copies running
        gone = await asyncio.gather(*(proc.wait_exit(p.pid, p.start_time, KILL_WAIT_S) for p in killed))
        for p, exited in zip(killed, gone, strict=True):
            if not exited:
                logger.warning("a killed task process still runs after %.0fs pid=%d", KILL_WAIT_S, p.pid)
        if keep is not None:
            logger.info(
                "task adopted task=%s pid=%d launch_id=%s running=%s from_stored_handle=%s",
                cfg.task_id,
                keep.pid,
                keep.driver_state.get("launch_id", ""),
                keep_sid != 0,
                keep is handle,
            )
        return keep

    async def _stop_copy(self, handle: TaskHandle) -> None:
        """Kill a duplicate copy of a task: its process group and executor, not the cgroups (the
        kept copy shares them)."""
        epid, estart, _ = self._executor(handle)
        logger.warning("killing a duplicate copy of a task task=%s pid=%d", handle.task_name, handle.pid)
        if await asyncio.to_thread(proc.group_is_ours, handle.pid, handle.start_time):
            proc.kill_group(handle.pid, 9)
        if not await proc.wait_exit(epid, estart, KILL_WAIT_S):
            await asyncio.to_thread(proc.kill_pid, epid, estart, 9)

    async def destroy_task(self, handle: TaskHandle) -> None:
        epid, estart, _ = self._executor(handle)
        if await proc.alive(handle.pid, handle.start_time) or await proc.alive(epid, estart):
            await self.stop_task(handle, 0.0, "SIGKILL")
        await asyncio.to_thread(self.release, list(handle.driver_state.get("cgroups") or []))


def _choose(running: list[TaskHandle], launch_id: str, stored_launch: object) -> TaskHandle | None:
    """The copy to keep: the last recorded launch, else the stored handle's, else the newest."""
    for wanted in (launch_id, stored_launch):
        for h in running:
            if wanted and h.driver_state.get("launch_id") == wanted:
                return h
    if not running:
        return None
    return max(running, key=lambda h: int(h.driver_state.get("executor_start_time") or 0))

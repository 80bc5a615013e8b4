"""The per-task executor: ``python -m nomadd.drivers.executor SPEC_JSON HANDSHAKE_FD [LAUNCH_ID]``.

The driver starts it in a new session; it forks once more and the first process exits, so the
executor is nobody's child in the agent and survives the agent exiting (the client unit uses
``KillMode=process``). The executor then

1. starts the task in its own session and process group (pgid = task pid), after joining the
   task's cgroups, applying rlimits and dropping to the task user (setgroups/setgid/setuid);
2. publishes ``{"ok": true, "pid": P, "start_time": T, "executor_pid": E,
   "executor_start_time": S, "started_at": W, "handle_state": ...}`` (``handle_state`` copied
   from the spec) atomically in the spec's ``launch_record`` file, then writes it as one JSON line
   to HANDSHAKE_FD (``{"ok": false, "error": "..."}`` when the task could not start) and closes it.
   The record is how an agent that died before it read the handshake (or stored it) adopts the
   task after its restart; a handshake nobody reads any more is not an error;
3. pumps the task's stdout/stderr into rotated files ``<log_dir>/<task>.stdout.N`` / ``.stderr.N``;
4. waits for the task and writes ``{"exit_code", "signal", "oom_killed", "finished_at"}``
   atomically to the spec's ``status_path``, then exits.

SIGTERM/SIGINT sent to the executor are forwarded to the task's process group; SIGHUP is
ignored. Errors of the executor itself go to its stderr (``executor.log`` in its state dir).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from nomadd.drivers import isolation
from nomadd.drivers.logrotate import FileRotator

# After the task exits, how long to keep pumping output held open by its leftover children.
LOG_DRAIN_TIMEOUT_S = 2.0
READ_CHUNK = 64 * 1024
_FORWARDED = (signal.SIGTERM, signal.SIGINT)


def _oom_killed(paths: list[str]) -> bool:
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value or "0") > 0:
                        return True
        except (OSError, ValueError):
            continue
    return False


def _reset_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


def _joiner(spec: dict[str, Any]) -> Callable[[], None]:
    """Join the task's cgroups and apply its rlimits (in the forked child)."""
    procs_files: list[str] = list(spec.get("cgroup_procs") or [])
    rlimits: dict[str, list[int]] = dict(spec.get("rlimits") or {})

    def join() -> None:
        _reset_signals()
        for path in procs_files:
            with open(path, "w") as f:
                f.write("0")
        for name, (soft, hard) in rlimits.items():
            import resource

            resource.setrlimit(getattr(resource, name), (soft, hard))

    return join


def _becomer(spec: dict[str, Any]) -> Callable[[], None]:
    """Take the task user's identity and umask (in the forked child)."""
    uid, gid = spec.get("uid"), spec.get("gid")
    groups: list[int] | None = spec.get("groups")
    umask: int = int(spec.get("umask", 0o022))

    def become() -> None:
        if groups is not None:
            os.setgroups(groups)
        if gid is not None:
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        os.umask(umask)

    return become


def _preexec(spec: dict[str, Any]) -> Callable[[], None]:
    """Runs in the forked child before exec; the forking process is single-threaded then.

    With ``spec["isolation"]`` and ``spec["ns_pid"]`` (an ``alloc exec`` into an isolated task)
    the child also enters the task's namespaces and root."""
    join, become = _joiner(spec), _becomer(spec)
    iso = spec.get("isolation")
    ns_pid = int(spec.get("ns_pid") or 0)

    def run() -> None:
        os.setsid()
        join()
        if iso and ns_pid:
            isolation.enter(iso, ns_pid)
        become()

    return run


preexec_for = _preexec  # also puts an ``alloc exec`` command where the task runs


def _pump(fd: int, rotator: FileRotator) -> None:
    try:
        while True:
            data = os.read(fd, READ_CHUNK)
            if not data:
                break
            rotator.write(data)
    except OSError as err:
        print(f"executor: log pump error: {err}", file=sys.stderr, flush=True)
    finally:
        rotator.close()
        os.close(fd)


def _write_status(path: str, status: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(status, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _handshake(fd: int, msg: dict[str, Any]) -> None:
    try:
        os.write(fd, (json.dumps(msg) + "\n").encode())
    except OSError as err:  # the agent died meanwhile: it adopts the task from the launch record
        print(f"executor: handshake not delivered: {err}", file=sys.stderr, flush=True)
    finally:
        os.close(fd)


def _publish(path: str, msg: dict[str, Any]) -> None:
    """Write the launch record atomically. Not fsync'ed: only an agent restarted on a running
    host reads it, and a host that lost power has no executor left to adopt."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(msg, f)
        os.replace(tmp, path)
    except OSError as err:
        print(f"executor: cannot write launch record {path}: {err}", file=sys.stderr, flush=True)


def _start_time(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rfind(b")") + 2 :].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _setup_error(status_r: int) -> str:
    """What an isolated task's init wrote before it failed to set the task up ("" if nothing)."""
    if status_r < 0:
        return ""
    os.set_blocking(status_r, False)
    try:
        line = os.read(status_r, 4096).decode(errors="replace").strip()
    except OSError:
        return ""
    prefix = isolation.SETUP_ERROR + " "
    return "cannot set up the task's root: " + line[len(prefix) :] if line.startswith(prefix) else ""


def run(spec: dict[str, Any], handshake_fd: int) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log_dir: str = spec["log_dir"]
    task: str = spec["task_name"]
    max_files = int(spec.get("max_files", 10))
    max_bytes = int(spec.get("max_file_size_bytes", 10 * 1024 * 1024))
    iso: dict[str, Any] = spec.get("isolation") or {}
    status_r = status_w = -1
    try:
        out = FileRotator(log_dir, f"{task}.stdout", max_files, max_bytes)
        err = FileRotator(log_dir, f"{task}.stderr", max_files, max_bytes)
        preexec = _preexec(spec)
        if iso:
            status_r, status_w = os.pipe()
            preexec = isolation.preexec(iso, status_w, _joiner(spec), _becomer(spec))
        with isolation.new_pid_namespace(bool(iso) and iso.get("pid_mode") != "host"):
            proc = subprocess.Popen(
                [spec["command"], *spec.get("args", [])],
                env=spec.get("env", {}),
                cwd=spec.get("cwd") or None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
                pass_fds=(status_w,) if iso else (),
                preexec_fn=preexec,  # single-threaded here
            )
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
        why = _setup_error(status_r) or f"{type(e).__name__}: {e}"
        _handshake(handshake_fd, {"ok": False, "error": why})
        return 1
    finally:
        if status_w >= 0:
            os.close(status_w)
    pgid = proc.pid

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(pgid, signum)
        except OSError:
            pass

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    assert proc.stdout is not None
    assert proc.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(os.dup(proc.stdout.fileno()), out), daemon=True),
        threading.Thread(target=_pump, args=(os.dup(proc.stderr.fileno()), err), daemon=True),
    ]
    proc.stdout.close()
    proc.stderr.close()
    for t in pumps:
        t.start()
    msg = {
        "ok": True,
        "pid": proc.pid,
        "start_time": _start_time(proc.pid),
        "executor_pid": os.getpid(),
        "executor_start_time": _start_time(os.getpid()),
        "started_at": time.time(),
        "handle_state": spec.get("handle_state") or {},
    }
    if spec.get("launch_record"):
        _publish(spec["launch_record"], msg)
    _handshake(handshake_fd, msg)
    _, status = os.waitpid(proc.pid, 0)
    if status_r >= 0:  # the init's report of the task's own wait status
        with contextlib.suppress(OSError, ValueError), os.fdopen(status_r, "rb") as f:
            status = int(f.read().strip() or b"x")
    code = os.waitstatus_to_exitcode(status)
    deadline = time.monotonic() + LOG_DRAIN_TIMEOUT_S
    for t in pumps:
        t.join(max(0.0, deadline - time.monotonic()))
    _write_status(
        spec["status_path"],
        {
            "exit_code": code if code >= 0 else 128 - code,
            "signal": -code if code < 0 else 0,
            "oom_killed": _oom_killed(list(spec.get("oom_files") or [])),
            "finished_at": time.time(),
        },
    )
    return 0


def main(argv: list[str]) -> int:
    # LAUNCH_ID is not read here: it marks the process for the agent's adoption scan
    if len(argv) not in (2, 3):
        print("usage: python -m nomadd.drivers.executor SPEC_JSON HANDSHAKE_FD [LAUNCH_ID]", file=sys.stderr)
        return 2
    spec_path, fd = argv[0], int(argv[1])
    if os.fork() > 0:
        # The first process exits at once: the driver reaps it, the executor is re-parented.
        os._exit(0)
    try:
        with open(spec_path) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        _handshake(fd, {"ok": False, "error": f"cannot read executor spec: {e}"})
        return 1
    return run(spec, fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Filesystem, process and privilege isolation of ``exec`` tasks (Nomad's exec driver, Linux only).

The executor starts an isolated task in three steps (see :func:`preexec`):

* the executor itself calls ``unshare(CLONE_NEWPID)`` (unless ``pid_mode = "host"``), so the
  child it forks, the task's **init**, is PID 1 of a new PID namespace;
* the init (still root, in the host's file system) unshares a mount and (unless
  ``ipc_mode = "host"``) an IPC namespace, makes every mount private and builds the task's root
  in its task dir with **bind mounts**, not copies: the ``chroot_env`` entries read-only (Nomad's
  default list, :data:`DEFAULT_CHROOT_ENV`), ``/etc/shadow`` and its kin masked with an empty
  file, a tmpfs ``/dev`` with the usual device nodes and ``/dev/shm``, a fresh ``/proc`` of the new
  PID namespace, the allocation's shared dir at ``/alloc`` and the task's host volumes. Mounts
  live in the task's mount namespace only: the host sees empty mount points, nothing to clean up;
* the init forks the **task** (PID 2), which joins the task's cgroups, gets its own process
  group, ``chroot``s, drops every capability outside Nomad's default set from its bounding set,
  sets ``no_new_privs`` and becomes the task user; then it execs the command.

The init forwards the signals it gets to the task's process group, reaps orphans, and when the
task exits writes the task's raw wait status to the executor's status pipe and exits (the kernel
then kills whatever is left in the namespace). A stop's final SIGKILL of the init does the same.

The host's ``/root``, ``/home``, ``/var`` ... and ``/sys`` are not in the task's root.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

# Not typing.TYPE_CHECKING: the executor imports this module, and typing costs it start-up time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

# Nomad's client/config DefaultChrootEnv: host path -> path inside the task.
DEFAULT_CHROOT_ENV: Mapping[str, str] = {
    "/bin": "/bin",
    "/etc": "/etc",
    "/lib": "/lib",
    "/lib32": "/lib32",
    "/lib64": "/lib64",
    "/run/resolvconf": "/run/resolvconf",
    "/sbin": "/sbin",
    "/usr": "/usr",
    "/run/systemd/resolve": "/run/systemd/resolve",
}
# The task's dirs as the task sees them (its env says these, not the host's paths).
TASK_ENV: Mapping[str, str] = {
    "NOMAD_ALLOC_DIR": "/alloc",
    "NOMAD_TASK_DIR": "/local",
    "NOMAD_SECRETS_DIR": "/secrets",
}
# Files under /etc no task may read, even one running as root (an empty file is mounted over).
MASKED_ETC = ("shadow", "shadow-", "gshadow", "gshadow-", "sudoers", "security/opasswd")
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
# Nomad's default exec capability set (drivers/shared/capabilities NomadDefaults).
DEFAULT_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
# Linux capability numbers (linux/capability.h).
CAP_NUMBERS = {
    name: number
    for number, name in enumerate(
        (
            "CHOWN",
            "DAC_OVERRIDE",
            "DAC_READ_SEARCH",
            "FOWNER",
            "FSETID",
            "KILL",
            "SETGID",
            "SETUID",
            "SETPCAP",
            "LINUX_IMMUTABLE",
            "NET_BIND_SERVICE",
            "NET_BROADCAST",
            "NET_ADMIN",
            "NET_RAW",
            "IPC_LOCK",
            "IPC_OWNER",
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_CHROOT",
            "SYS_PTRACE",
            "SYS_PACCT",
            "SYS_ADMIN",
            "SYS_BOOT",
            "SYS_NICE",
            "SYS_RESOURCE",
            "SYS_TIME",
            "SYS_TTY_CONFIG",
            "MKNOD",
            "LEASE",
            "AUDIT_WRITE",
            "AUDIT_CONTROL",
            "SETFCAP",
            "MAC_OVERRIDE",
            "MAC_ADMIN",
            "SYSLOG",
            "WAKE_ALARM",
            "BLOCK_SUSPEND",
            "AUDIT_READ",
            "PERFMON",
            "BPF",
            "CHECKPOINT_RESTORE",
        )
    )
}

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
SETUP_ERROR = "error"  # first word of a status pipe line from an init that could not set up
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

_libc: Any = None


def libc() -> Any:
    """The C library (loaded once; load it before forking: a forked child of a threaded process
    must not run ``find_library``'s subprocesses)."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        except OSError:
            from ctypes.util import find_library

            _libc = ctypes.CDLL(find_library("c"), use_errno=True)
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(libc().unshare(flags), "unshare")


def setns(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(libc().setns(fd, nstype), f"setns {path}")
    finally:
        os.close(fd)


def mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if s is None else s.encode() for s in (src, target, fstype, data)]
    _check(libc().mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def prctl(option: int, arg: int) -> None:
    _check(libc().prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl {option}")


@contextlib.contextmanager
def new_pid_namespace(enabled: bool = True) -> Iterator[None]:
    """The child forked inside the block is PID 1 of a new PID namespace. The caller's own
    namespace for children is restored after (a process whose children go to another
    namespace cannot start threads)."""
    if not enabled:
        yield
        return
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        unshare(CLONE_NEWPID)
        try:
            yield
        finally:
            _check(libc().setns(own, CLONE_NEWPID), "setns back to the own pid namespace")
    finally:
        os.close(own)


def probe() -> str:
    """Blocking: "" when this host lets a child unshare mount, PID and IPC namespaces, else why not."""
    try:
        libc()
    except OSError as err:
        return f"cannot load the C library: {err}"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        try:
            unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC)
            os.write(w, b"ok")
        except BaseException as err:  # reported to the parent
            with contextlib.suppress(OSError):
                os.write(w, str(err).encode()[:500])
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode(errors="replace")
    os.waitpid(pid, 0)
    return "" if out == "ok" else f"cannot create namespaces: {out or 'probe died'}"


def _inside(root: str, path: str) -> str:
    rel = os.path.normpath("/" + path).lstrip("/")
    return os.path.join(root, rel) if rel else root


def _mountpoint(target: str, like: str) -> None:
    """Create ``target`` as a dir (or an empty file when ``like`` is not a dir)."""
    if os.path.isdir(like):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            with open(target, "a"):
                pass


def bind(src: str, target: str, read_only: bool) -> None:
    _mountpoint(target, src)
    mount(src, target, None, MS_BIND | MS_REC)
    if read_only:
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(iso: Mapping[str, Any]) -> None:
    """In the task's new mount namespace (root): build its root in ``iso["root"]``."""
    root: str = iso["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    for src, dst in dict(iso.get("chroot_env") or DEFAULT_CHROOT_ENV).items():
        target = _inside(root, dst)
        if os.path.islink(src) and os.path.normpath(src) == os.path.normpath(dst):
            # merged-/usr hosts: /bin -> usr/bin stays a link inside the task's root
            if not os.path.lexists(target):
                os.symlink(os.readlink(src), target)
            continue
        if os.path.exists(src) and not os.path.islink(target):
            bind(src, target, True)
    for name in MASKED_ETC:
        target = os.path.join(root, "etc", name)
        if os.path.isfile(target) and not os.path.islink(target):
            mount("/dev/null", target, None, MS_BIND)
    dev = os.path.join(root, "dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k")
    for node in DEV_NODES:
        if os.path.exists("/dev/" + node):
            bind("/dev/" + node, os.path.join(dev, node), False)
    os.makedirs(os.path.join(dev, "shm"))
    mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k")
    for name, to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1")):
        os.symlink(to, os.path.join(dev, name))
    os.symlink("/proc/self/fd/2", os.path.join(dev, "stderr"))
    proc_dir = os.path.join(root, "proc")
    os.makedirs(proc_dir, exist_ok=True)
    mount("proc", proc_dir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    bind(iso["alloc_dir"], os.path.join(root, "alloc"), False)
    for m in iso.get("mounts") or []:
        bind(m["host_path"], _inside(root, m["task_path"]), bool(m["read_only"]))


def cap_names(value: object, key: str) -> list[str]:
    """A list of capability names (``CAP_`` prefix and case optional) or ``"all"``; ValueError
    naming ``key`` otherwise."""
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(c, str) for c in value):
        raise ValueError(f"{key} must be a list of capability names")
    out = [c.upper().removeprefix("CAP_") for c in value]
    for c in out:
        if c != "ALL" and c not in CAP_NUMBERS:
            raise ValueError(f"{key}: unknown capability {c!r}")
    return out


def allowed_caps(allow_caps: object) -> frozenset[str]:
    """The agent's ``allow_caps`` (None: Nomad's default set; ``"all"``: every capability)."""
    if allow_caps is None:
        return DEFAULT_CAPS
    names = cap_names(allow_caps, "allow_caps")
    return frozenset(CAP_NUMBERS) if "ALL" in names else frozenset(names)


def task_caps(cap_add: object, cap_drop: object, allowed: frozenset[str] = DEFAULT_CAPS) -> frozenset[str]:
    """Nomad's exec capabilities: its default set within the agent's ``allowed`` set, less the
    task's ``cap_drop`` (``"all"`` drops every one), plus its ``cap_add`` (each must be allowed).
    Raises ValueError naming the bad entry."""
    caps = set(DEFAULT_CAPS & allowed)
    for c in cap_names(cap_drop, "cap_drop"):
        if c == "ALL":
            caps.clear()
        else:
            caps.discard(c)
    for c in cap_names(cap_add, "cap_add"):
        if c == "ALL":
            caps |= allowed
        elif c not in allowed:
            raise ValueError(f"cap_add: capability {c!r} is not allowed (allow_caps: {sorted(allowed)})")
        else:
            caps.add(c)
    return frozenset(caps)


def drop_privileges(caps: frozenset[str] = DEFAULT_CAPS) -> None:
    """Drop every capability outside ``caps`` from the bounding set and set no_new_privs."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 40
    keep = {CAP_NUMBERS[c] for c in caps if c in CAP_NUMBERS}
    for cap in range(last + 1):
        if cap not in keep:
            prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def _forwarder(pgid: int) -> Callable[[int, object], None]:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signum)

    return forward


def _init(task_pid: int, status_w: int) -> None:
    """The task's init (never returns): forward signals, reap, report the task's status."""
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, _forwarder(task_pid))
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, status_w)
    os.closerange(status_w + 1, 65536)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        if pid == task_pid:
            with contextlib.suppress(OSError):
                os.write(status_w, f"{status}\n".encode())
            os._exit(0)


def preexec(
    iso: Mapping[str, Any], status_w: int, join: Callable[[], None], become: Callable[[], None]
) -> Callable[[], None]:
    """The executor's preexec for an isolated task: runs as the init (a new session), forks the
    task, which joins its cgroups (``join``), is confined, takes the task user (``become``) and
    returns from here to exec; the init never returns."""

    def run() -> None:
        os.setsid()
        flags = CLONE_NEWNS | (0 if iso.get("ipc_mode") == "host" else CLONE_NEWIPC)
        try:
            unshare(flags)
            build_root(iso)
        except BaseException as err:  # the executor reads why from the status pipe
            with contextlib.suppress(OSError):
                os.write(status_w, f"{SETUP_ERROR} {err}\n".encode()[:4000])
            raise
        r, w = os.pipe()  # the task waits until the init forwards signals
        task = os.fork()
        if task:
            os.close(r)
            _init(task, status_w)  # closes w (with every other fd)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        os.close(status_w)
        os.setpgid(0, 0)
        if iso.get("pid_mode") == "host":
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        join()  # cgroups, while the host's /sys is still in view
        os.chroot(iso["root"])
        os.chdir("/")
        drop_privileges(frozenset(iso.get("caps", DEFAULT_CAPS)))
        become()

    return run


def enter(iso: Mapping[str, Any], ns_pid: int) -> None:
    """Put the calling (forked, single-threaded, root) process into a running task's mount and
    IPC namespaces and root (``alloc exec``). The PID namespace is not entered: the command sees
    the task's processes through the task's /proc, and is not one of them."""
    if iso.get("ipc_mode") != "host":
        setns(f"/proc/{ns_pid}/ns/ipc", CLONE_NEWIPC)
    setns(f"/proc/{ns_pid}/ns/mnt", CLONE_NEWNS)
    os.chroot(iso["root"])
    os.chdir("/")
    drop_privileges(frozenset(iso.get("caps", DEFAULT_CAPS)))

"""Reading an allocation's directory for ``/v1/client/fs/*`` and ``alloc logs``, confined to it.

A task can write anything into its allocation directory, symlinks included, so a path is never
handed to the kernel whole. :func:`resolve` walks it one component at a time from a directory fd
of the allocation directory, opening each component with ``O_PATH | O_NOFOLLOW`` relative to
the previous one (``openat``), so the kernel follows no symlink and no ``..`` on our behalf:

* ``..`` pops the walk's stack; popping past the allocation directory is refused;
* a symlink is read (``readlinkat``) and its target spliced into the rest of the path: a
  relative target continues from the link's directory, an absolute one is refused unless it
  names a place inside the allocation directory (by its host path), and more than
  :data:`MAX_LINKS` links are refused (a loop);
* the objects opened are the ones checked: a task that swaps a component for a symlink between
  two steps gets its symlink read and confined like any other, never followed.

A leading ``/`` means the allocation directory itself (Nomad's ``alloc fs <alloc> /``). The
executor's private ``.executor/`` directory is not served. Everything here blocks: call it
through ``asyncio.to_thread``.
"""

from __future__ import annotations

import errno
import mimetypes
import os
import stat
from dataclasses import dataclass

from nomadd.structs.errors import NotFoundError, ValidationError
from nomadd.structs.timeutil import format_time

__all__ = [
    "ESCAPE_MESSAGE",
    "MAX_LINKS",
    "FileInfo",
    "Resolved",
    "file_info",
    "list_dir",
    "read_at",
    "resolve",
    "size_of",
]

MAX_LINKS = 40  # Linux's own limit on symlinks followed in one lookup
ESCAPE_MESSAGE = "path escapes the allocation directory"
HIDDEN = frozenset({".executor"})  # root-only executor state at the top of the alloc dir
MAX_READ_BYTES = 16 * 1024 * 1024

_O_PATH = getattr(os, "O_PATH", 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileInfo:
    """Nomad's ``AllocFileInfo``."""

    name: str
    is_dir: bool
    size: int
    file_mode: str
    mod_time: str
    content_type: str

    def to_api(self) -> dict[str, object]:
        return {
            "Name": self.name,
            "IsDir": self.is_dir,
            "Size": self.size,
            "FileMode": self.file_mode,
            "ModTime": self.mod_time,
            "ContentType": self.content_type,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """An ``O_PATH`` fd of the object a path names, its name and its ``lstat``; close ``fd``."""

    fd: int
    name: str
    st: os.stat_result


def _escape() -> ValidationError:
    return ValidationError(ESCAPE_MESSAGE)


MAX_PATH_BYTES = 4096


def _split(path: str) -> list[str]:
    if "\0" in path:
        raise ValidationError("path contains a NUL byte")
    if len(path.encode(errors="surrogateescape")) > MAX_PATH_BYTES:
        raise ValidationError(f"path is longer than {MAX_PATH_BYTES} bytes")
    return [p for p in path.split("/") if p not in ("", ".")]


def resolve(alloc_path: str, path: str) -> Resolved:
    """Walk ``path`` (relative to ``alloc_path``) without letting the kernel follow anything.

    Raises ValidationError (400) for a path that leaves the allocation directory and
    NotFoundError (404) for one that does not exist.
    """
    real_root = os.path.realpath(alloc_path)
    try:
        root_fd = os.open(alloc_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise NotFoundError("the allocation directory does not exist (any more)") from None
    stack: list[tuple[int, str]] = [(root_fd, "/")]  # (fd, name) of each dir walked into
    todo = list(reversed(_split(path)))  # components still to walk, next one last
    links = 0
    try:
        while todo:
            comp = todo.pop()
            if comp == "..":
                if len(stack) == 1:
                    raise _escape()
                os.close(stack.pop()[0])
                continue
            if len(stack) == 1 and comp in HIDDEN:
                raise NotFoundError(f"no such file or directory: {path}")
            parent = stack[-1][0]
            try:
                fd = os.open(comp, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            except FileNotFoundError:
                raise NotFoundError(f"no such file or directory: {path}") from None
            except NotADirectoryError:
                raise NotFoundError(f"not a directory: {path}") from None
            except OSError as err:  # a name too long, a permission the agent lacks ...
                raise ValidationError(
                    f"cannot open {path[:256]!r}: {os.strerror(err.errno or errno.EIO)}"
                ) from None
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                os.close(fd)
                links += 1
                if links > MAX_LINKS:
                    raise ValidationError(f"too many levels of symbolic links: {path}")
                target = os.readlink(comp, dir_fd=parent)
                todo.extend(reversed(_split(_inside(target, real_root))))
                if target.startswith("/"):  # a host path inside the alloc dir: walk from its top
                    while len(stack) > 1:
                        os.close(stack.pop()[0])
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotFoundError(f"not a directory: {path}")
            stack.append((fd, comp))
        fd, name = stack.pop()
        fd = os.dup(fd) if fd == root_fd else fd
        return Resolved(fd=fd, name=name, st=os.fstat(fd))
    finally:
        for fd, _ in stack:
            os.close(fd)


def _inside(target: str, real_root: str) -> str:
    """A symlink's target as a path to walk: relative targets as they are, an absolute target
    only when it lies inside the allocation directory (as the rest of the path from its top)."""
    if not target.startswith("/"):
        return target
    norm = os.path.normpath(target)
    if norm == real_root:
        return ""
    if norm.startswith(real_root + "/"):
        return norm[len(real_root) + 1 :]
    raise _escape()


def _info(name: str, st: os.stat_result) -> FileInfo:
    is_dir = stat.S_ISDIR(st.st_mode)
    ctype = "" if is_dir else (mimetypes.guess_type(name)[0] or "application/octet-stream")
    return FileInfo(
        name=name,
        is_dir=is_dir,
        size=st.st_size,
        file_mode=stat.filemode(st.st_mode),
        mod_time=format_time(st.st_mtime_ns),
        content_type=ctype,
    )


def file_info(alloc_path: str, path: str) -> FileInfo:
    r = resolve(alloc_path, path)
    os.close(r.fd)
    return _info(r.name, r.st)


def list_dir(alloc_path: str, path: str) -> list[FileInfo]:
    """The entries of a directory (their own ``lstat``: a symlink is listed, never followed)."""
    r = resolve(alloc_path, path)
    try:
        if not stat.S_ISDIR(r.st.st_mode):
            raise ValidationError(f"not a directory: {path}")
        dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=r.fd)
    finally:
        os.close(r.fd)
    try:
        top = not _split(path) or os.path.samestat(os.fstat(dfd), os.stat(alloc_path))
        out = []
        for name in sorted(os.listdir(dfd)):
            if top and name in HIDDEN:
                continue
            try:
                out.append(_info(name, os.stat(name, dir_fd=dfd, follow_symlinks=False)))
            except FileNotFoundError:
                continue
        return out
    finally:
        os.close(dfd)


def _open_file(alloc_path: str, path: str) -> int:
    """A read fd of the regular file ``path`` names (the very inode the walk checked)."""
    r = resolve(alloc_path, path)
    try:
        if stat.S_ISDIR(r.st.st_mode):
            raise ValidationError(f"is a directory: {path}")
        if not stat.S_ISREG(r.st.st_mode):
            raise ValidationError(f"not a regular file: {path}")
        # reopen the O_PATH fd for reading: /proc/self/fd names exactly that inode
        try:
            fd = os.open(f"/proc/self/fd/{r.fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            raise NotFoundError(f"cannot open {path}: {os.strerror(err.errno or errno.EIO)}") from None
        if not os.path.samestat(os.fstat(fd), r.st):
            os.close(fd)
            raise _escape()
        return fd
    finally:
        os.close(r.fd)


def read_at(alloc_path: str, path: str, offset: int, limit: int) -> bytes:
    """``limit`` bytes (at most :data:`MAX_READ_BYTES`; negative: to the end) from ``offset``."""
    fd = _open_file(alloc_path, path)
    try:
        size = os.fstat(fd).st_size
        want = size - offset if limit < 0 else limit
        want = max(0, min(want, MAX_READ_BYTES))
        return os.pread(fd, want, offset) if want else b""
    finally:
        os.close(fd)


def size_of(alloc_path: str, path: str) -> int:
    """The size of a regular file, -1 when there is none (any more)."""
    try:
        fd = _open_file(alloc_path, path)
    except NotFoundError:
        return -1
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)

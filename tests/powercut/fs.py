"""A FUSE file system that can lose power: every write not yet fsync'ed is volatile.

Run as a process: ``python -m tests.powercut.fs MOUNTPOINT [BACKING_DIR]``. It keeps two copies
of the file tree, inode by inode, as POSIX promises (the worst a disk with a cache may do):

* the volatile one, which every operation reads and changes (the page cache);
* the durable one, which changes only by ``fsync``/``fdatasync`` of a file (its data and
  attributes) and by ``fsync`` of a directory (its entries: creates, unlinks and renames of
  names in it become durable only then). A name made durable for a file whose data never was
  reads back as an empty file.

Writing ``cut`` to ``MOUNTPOINT/.powercut`` loses power: the volatile tree is replaced by the
durable one. The processes using the mount must be dead by then (SIGKILL them first); the
mount is opened with ``direct_io`` and zero cache timeouts so the kernel holds no stale copy
(``POWERCUT_PAGE_CACHE=1`` leaves the page cache on, for programs that mmap).
Reading ``.powercut`` returns counters as JSON. With ``BACKING_DIR`` the durable tree is
written there too (one file per inode, and ``tree.json``), on every fsync, to look at after a
test. Single-threaded: operations never interleave.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import mfusepy as fuse

CONTROL = "/.powercut"
_CONTROL_FH = 0


@dataclass
class Inode:
    mode: int
    uid: int
    gid: int
    data: bytearray = field(default_factory=bytearray)
    entries: dict[str, int] = field(default_factory=dict)  # directories
    mtime_ns: int = field(default_factory=time.time_ns)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def copy(self) -> Inode:
        return Inode(
            mode=self.mode,
            uid=self.uid,
            gid=self.gid,
            data=bytearray(self.data),
            entries=dict(self.entries),
            mtime_ns=self.mtime_ns,
        )


class PowerCutFS(fuse.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, backing: str | None = None) -> None:
        root = Inode(mode=stat.S_IFDIR | 0o755, uid=os.getuid(), gid=os.getgid())
        self.volatile: dict[int, Inode] = {1: root}
        self.durable: dict[int, Inode] = {1: root.copy()}
        self.next_ino = 2
        self.handles: dict[int, int] = {}  # fh -> ino
        self.next_fh = 1
        self.backing = backing
        self.stats = {"cuts": 0, "fsyncs": 0, "dir_fsyncs": 0, "writes": 0, "lost_inodes": 0}

    # ---- helpers --------------------------------------------------------------------------
    def _lookup(self, path: str) -> int:
        ino = 1
        for part in (p for p in path.split("/") if p):
            node = self.volatile.get(ino)
            if node is None or not node.is_dir or part not in node.entries:
                raise fuse.FuseOSError(errno.ENOENT)
            ino = node.entries[part]
        return ino

    def _parent(self, path: str) -> tuple[Inode, str]:
        head, name = os.path.split(path.rstrip("/"))
        parent = self.volatile[self._lookup(head or "/")]
        if not parent.is_dir:
            raise fuse.FuseOSError(errno.ENOTDIR)
        return parent, name

    def _node(self, path: str, fh: int | None = None) -> Inode:
        if fh and fh in self.handles:
            return self.volatile[self.handles[fh]]
        return self.volatile[self._lookup(path)]

    def _new(self, mode: int) -> int:
        ctx_uid, ctx_gid, _ = fuse.fuse_get_context()
        ino = self.next_ino
        self.next_ino += 1
        self.volatile[ino] = Inode(mode=mode, uid=ctx_uid, gid=ctx_gid)
        return ino

    def _open_fh(self, ino: int) -> int:
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = ino
        return fh

    def _persist(self) -> None:
        if not self.backing:
            return
        tree = {
            ino: {"mode": n.mode, "entries": n.entries, "size": len(n.data)}
            for ino, n in self.durable.items()
        }
        for ino, n in self.durable.items():
            if not n.is_dir:
                with open(os.path.join(self.backing, f"ino-{ino}"), "wb") as f:
                    f.write(n.data)
        with open(os.path.join(self.backing, "tree.json"), "w") as f:
            json.dump(tree, f)

    def cut(self) -> None:
        """Power loss: only what was fsync'ed is left."""
        reachable: set[int] = set()
        stack = [1]
        while stack:
            ino = stack.pop()
            if ino in reachable:
                continue
            reachable.add(ino)
            node = self.durable.setdefault(ino, Inode(mode=stat.S_IFREG | 0o600, uid=0, gid=0))
            stack.extend(node.entries.values())
        self.stats["lost_inodes"] += len(set(self.volatile) - reachable)
        self.volatile = {ino: self.durable[ino].copy() for ino in reachable}
        self.handles.clear()
        self.stats["cuts"] += 1

    # ---- attributes -----------------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        if path == CONTROL:
            return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": 0}
        node = self._node(path, fh)
        t = node.mtime_ns
        subdirs = sum(1 for i in node.entries.values() if self.volatile[i].is_dir) if node.is_dir else 0
        return {
            "st_mode": node.mode,
            "st_nlink": 2 + subdirs if node.is_dir else 1,
            "st_size": len(node.data),
            "st_uid": node.uid,
            "st_gid": node.gid,
            "st_atime": t,
            "st_mtime": t,
            "st_ctime": t,
        }

    def chmod(self, path: str, mode: int) -> int:
        node = self._node(path)
        node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        node = self._node(path)
        if uid != -1 and uid != 0xFFFFFFFF:
            node.uid = uid
        if gid != -1 and gid != 0xFFFFFFFF:
            node.gid = gid
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        self._node(path).mtime_ns = times[1] if times else time.time_ns()
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": 1 << 20,
            "f_bfree": 1 << 19,
            "f_bavail": 1 << 19,
        }

    def access(self, path: str, amode: int) -> int:
        if path != CONTROL:
            self._lookup(path)
        return 0

    # ---- directories ----------------------------------------------------------------------
    def readdir(self, path: str, fh: int) -> list[str]:
        node = self._node(path)
        return [".", "..", *node.entries]

    def mkdir(self, path: str, mode: int) -> int:
        parent, name = self._parent(path)
        if name in parent.entries:
            raise fuse.FuseOSError(errno.EEXIST)
        parent.entries[name] = self._new(stat.S_IFDIR | (mode & 0o7777))
        return 0

    def rmdir(self, path: str) -> int:
        parent, name = self._parent(path)
        ino = self._lookup(path)
        if self.volatile[ino].entries:
            raise fuse.FuseOSError(errno.ENOTEMPTY)
        del parent.entries[name]
        return 0

    def opendir(self, path: str) -> int:
        return self._open_fh(self._lookup(path))

    def releasedir(self, path: str, fh: int) -> int:
        self.handles.pop(fh, None)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        ino = self.handles.get(fh) or self._lookup(path)
        node = self.volatile[ino]
        durable = self.durable.setdefault(ino, node.copy())
        durable.entries = dict(node.entries)
        durable.mode, durable.uid, durable.gid = node.mode, node.uid, node.gid
        for child in node.entries.values():
            if child not in self.durable:  # a name whose data was never synced: empty
                c = self.volatile[child]
                self.durable[child] = Inode(mode=c.mode, uid=c.uid, gid=c.gid)
        self.stats["dir_fsyncs"] += 1
        self._persist()
        return 0

    def rename(self, old: str, new: str) -> int:
        src_parent, src_name = self._parent(old)
        dst_parent, dst_name = self._parent(new)
        ino = src_parent.entries.get(src_name)
        if ino is None:
            raise fuse.FuseOSError(errno.ENOENT)
        target = dst_parent.entries.get(dst_name)
        if target is not None and self.volatile[target].is_dir and self.volatile[target].entries:
            raise fuse.FuseOSError(errno.ENOTEMPTY)
        del src_parent.entries[src_name]
        dst_parent.entries[dst_name] = ino
        return 0

    # ---- files ----------------------------------------------------------------------------
    def create(self, path: str, mode: int, flags: int = 0) -> int:
        parent, name = self._parent(path)
        if name in parent.entries:
            ino = parent.entries[name]
        else:
            ino = self._new(stat.S_IFREG | (mode & 0o7777))
            parent.entries[name] = ino
        return self._open_fh(ino)

    def open(self, path: str, flags: int) -> int:
        if path == CONTROL:
            return _CONTROL_FH
        ino = self._lookup(path)
        if flags & os.O_TRUNC:
            self.volatile[ino].data.clear()
        return self._open_fh(ino)

    def release(self, path: str, fh: int) -> int:
        self.handles.pop(fh, None)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        if fh == _CONTROL_FH:
            return json.dumps(self.stats).encode()[offset : offset + size]
        return bytes(self._node(path, fh).data[offset : offset + size])

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        if fh == _CONTROL_FH:
            if data.strip() == b"cut":
                self.cut()
            return len(data)
        node = self._node(path, fh)
        if offset > len(node.data):
            node.data.extend(bytes(offset - len(node.data)))
        node.data[offset : offset + len(data)] = data
        node.mtime_ns = time.time_ns()
        self.stats["writes"] += 1
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        if path == CONTROL:
            return 0
        node = self._node(path, fh)
        if length < len(node.data):
            del node.data[length:]
        else:
            node.data.extend(bytes(length - len(node.data)))
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        ino = self.handles.get(fh) or self._lookup(path)
        self.durable[ino] = self.volatile[ino].copy()
        self.stats["fsyncs"] += 1
        self._persist()
        return 0

    def unlink(self, path: str) -> int:
        parent, name = self._parent(path)
        if name not in parent.entries:
            raise fuse.FuseOSError(errno.ENOENT)
        del parent.entries[name]
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m tests.powercut.fs MOUNTPOINT [BACKING_DIR]", file=sys.stderr)
        return 2
    ops = PowerCutFS(argv[2] if len(argv) == 3 else None)
    # POWERCUT_PAGE_CACHE=1: no direct_io, so programs can mmap files (pysyncobj's own journal
    # does); the kernel then caches written pages, and the caller must sync() before a cut
    # so they reach this process (as volatile writes) first.
    options = {} if os.environ.get("POWERCUT_PAGE_CACHE") == "1" else {"direct_io": True}
    fuse.FUSE(
        ops,
        argv[1],
        foreground=True,
        nothreads=True,
        **options,
        hard_remove=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        fsname="powercut",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Allocation IDs (``context._uuid``): version-4 UUIDs from a pool of random bytes that is
never handed out twice, across refills, threads and a fork."""

from __future__ import annotations

import os
import threading
import uuid

from nomadd.scheduler import context
from nomadd.scheduler.context import _uuid


def test_ids_are_unique_uuid4_across_pool_refills() -> None:
    ids = [_uuid() for _ in range(3 * context._UUID_POOL_BYTES // 16 + 7)]
    assert len(set(ids)) == len(ids)
    for i in ids:
        parsed = uuid.UUID(i)
        assert str(parsed) == i and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_threads_never_get_the_same_id() -> None:
    per_thread = 2000
    got: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(len(got))

    def work(out: list[str]) -> None:
        start.wait()
        out.extend(_uuid() for _ in range(per_thread))

    threads = [threading.Thread(target=work, args=(out,)) for out in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for out in got for i in out]
    assert len(set(ids)) == len(ids) == per_thread * len(got)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    _uuid()  # the pool holds bytes the parent has not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next IDs and leave at once
        try:
            os.write(write, ",".join(_uuid() for _ in range(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = f.read().split(",")
    os.waitpid(pid, 0)
    parent = [_uuid() for _ in range(4)]
    assert len(child) == 4 and not set(child) & set(parent)

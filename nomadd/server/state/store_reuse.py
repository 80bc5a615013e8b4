"""A restore's decode keeps what the running state already holds.

An ``operator snapshot restore`` decodes the archive's state beside the running one, which
keeps serving until the swap, so each server holds two states at once: at a million
allocations 1.5 GB of running state and 1.1 GB of decoded state, over 2 GB. Most of an archive
restored into the cluster it came from (the usual restore: back to a recent snapshot) is equal
to what the cluster holds now. So a restore decodes *against* the running state
(:func:`reusing`, set by the restore's decoder thread): an allocation row that is strictly
equal (:func:`~nomadd.structs.codec_diff.strict_equal`: same types, map order and float signs;
its job by ``==``) to the running state's under the same key is kept as the running state's
object, and the decoded copy is dropped at once (``store_alloc_runs``); a job version ``==`` to
the running state's version of that number likewise (``store_jobs._kept_version``). The
restored state is equal to the archive's either way (but for what ``==`` leaves out of a job);
what changes is that the two states share their equal rows instead of holding two copies.

What a restore shares depends on the two states: an archive whose rows all differ from the
running state's (another cluster's, or one from long ago) still costs its whole size until the
swap (docs/contributing/raft.md, "A restore into the running C1M cluster").
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["active", "counts", "keeper", "live_table", "note", "register_live", "reusing"]

_local = threading.local()  # .tables: the running state's tables, for the decode on this thread


@contextlib.contextmanager
def reusing(tables: Mapping[str, Mapping[str, Any]] | None) -> Iterator[None]:
    """Decode on this thread against ``tables`` (the running state's, a snapshot of them:
    immutable maps, read from the decoder's thread while the apply thread goes on)."""
    before = getattr(_local, "tables", None), getattr(_local, "counts", None)
    _local.tables, _local.counts = tables, [0, 0]
    try:
        yield
    finally:
        _local.tables, _local.counts = before


def active() -> bool:
    """Whether this thread decodes against a running state (:func:`reusing`)."""
    return getattr(_local, "tables", None) is not None


def note(kept: int, built: int) -> None:
    """Count rows a decode kept as the running state's and rows it built (:func:`counts`)."""
    c = _local.counts
    c[0] += kept
    c[1] += built


def counts() -> tuple[int, int]:
    """(kept, built) rows this thread's decode counted so far (:func:`note`)."""
    c = getattr(_local, "counts", None) or (0, 0)
    return c[0], c[1]


def live_table(name: str) -> Mapping[str, Any] | None:
    """The running state's table ``name`` while this thread decodes against it, else None."""
    tables: Mapping[str, Mapping[str, Any]] | None = getattr(_local, "tables", None)
    return None if tables is None else tables.get(name)


_keepers: dict[str, Callable[[Any], Any]] = {}  # shared kind -> obj: the object to hold for it


def register_live(kind: str, keep: Callable[[Any], Any]) -> None:
    """How a restore keeps the running state's object of a shared ``kind`` (store_codec's
    ``register_shared``): ``keep(obj)`` is the running state's object equal to the decoded
    ``obj``, or ``obj``."""
    _keepers[kind] = keep


def keeper(kind: str) -> Callable[[Any], Any] | None:
    """The keep function of ``kind`` while this thread decodes against a running state, else None."""
    return _keepers.get(kind) if active() else None

"""Deferred loading of the system CA bundle for TLS client contexts made at import time.

aiohttp builds its two default TLS client contexts when it is imported, and loading the system CA
bundle into them (``load_default_certs`` for one, ``set_default_verify_paths`` for the other)
costs 40-70 ms — a large part of the agent's start-up budget, spent on a path nomadd does not use
before it is ready (the internal RPC is plain HTTP). While the agent imports its modules,
``deferred_ca_loading`` records those calls instead of running them; once the agent is ready,
``load_deferred`` runs each recorded call (off the loop), so every context ends up exactly as it
would have been.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator

__all__ = ["PendingContexts", "deferred_ca_loading", "load_deferred"]

PendingContexts = list[Callable[[], None]]


@contextlib.contextmanager
def deferred_ca_loading() -> Iterator[PendingContexts]:
    """Within the block, loading the default CA bundle into a context is recorded, not done."""
    pending: PendingContexts = []
    real_load = ssl.SSLContext.load_default_certs
    real_paths = ssl.SSLContext.set_default_verify_paths

    def load(self: ssl.SSLContext, purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH) -> None:
        pending.append(lambda: real_load(self, purpose))

    def paths(self: ssl.SSLContext) -> None:
        pending.append(lambda: real_paths(self))

    ssl.SSLContext.load_default_certs = load  # type: ignore[method-assign]
    ssl.SSLContext.set_default_verify_paths = paths  # type: ignore[method-assign]
    try:
        yield pending
    finally:
        ssl.SSLContext.load_default_certs = real_load  # type: ignore[method-assign]
        ssl.SSLContext.set_default_verify_paths = real_paths  # type: ignore[method-assign]


def load_deferred(pending: PendingContexts) -> None:
    """Run every recorded CA-loading call (blocking: call it in a thread)."""
    while pending:
        pending.pop(0)()

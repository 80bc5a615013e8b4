"""Deferred loading of the system CA bundle for TLS client contexts made at import time.

aiohttp builds its default TLS client contexts when it is imported, and loading the system CA
bundle into them costs 40-70 ms — a large part of the agent's start-up budget, spent on a path
nomadd does not use before it is ready (the internal RPC is plain HTTP). While the agent imports
its modules, ``deferred_ca_loading`` records those contexts instead of loading the bundle; once
the agent is ready, ``load_deferred`` loads it into each of them (off the loop), so every context
ends up exactly as it would have been.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator

__all__ = ["PendingContexts", "deferred_ca_loading", "load_deferred"]

PendingContexts = list[tuple[ssl.SSLContext, ssl.Purpose]]


@contextlib.contextmanager
def deferred_ca_loading() -> Iterator[PendingContexts]:
    """Within the block, ``SSLContext.load_default_certs`` records instead of loading."""
    pending: PendingContexts = []
    real = ssl.SSLContext.load_default_certs

    def record(self: ssl.SSLContext, purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH) -> None:
        pending.append((self, purpose))

    ssl.SSLContext.load_default_certs = record  # type: ignore[method-assign]
    try:
        yield pending
    finally:
        ssl.SSLContext.load_default_certs = real  # type: ignore[method-assign]


def load_deferred(pending: PendingContexts) -> None:
    """Load the default CA bundle into every recorded context (blocking: call it in a thread)."""
    while pending:
        context, purpose = pending.pop()
        context.load_default_certs(purpose)

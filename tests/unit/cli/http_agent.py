"""A stand-in agent for CLI tests: an ``http.server`` served from a thread for one test."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer


@contextlib.contextmanager
def serving(http: ThreadingHTTPServer) -> Iterator[None]:
    """``http`` answering from a thread inside the ``with``, shut down and closed after."""
    t = threading.Thread(target=http.serve_forever, daemon=True)
    t.start()
    try:
        yield
    finally:
        http.shutdown()
        http.server_close()
        t.join(5)

"""systemd readiness protocol (sd_notify) through the ``sdnotify`` package, plus the watchdog.

The notifier is made once, at start, while ``NOTIFY_SOCKET`` is still in the environment (the
package connects its datagram socket in the constructor); then ``NOTIFY_SOCKET`` and the
``WATCHDOG_*`` variables are removed from ``os.environ`` so no task or other child process ever
inherits them. Messages: ``READY=1`` (listeners bound, handlers installed), ``STATUS=...``,
``RELOADING=1`` + ``MONOTONIC_USEC``, ``STOPPING=1``, ``WATCHDOG=1`` every half ``WATCHDOG_USEC``,
``EXTEND_TIMEOUT_USEC`` while a graceful stop drains the node.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

logger = logging.getLogger(__name__)

__all__ = ["Notifier"]

_ENV_KEYS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
EXTEND_STEP_S = 10.0  # a slow stop (drain_on_shutdown) asks systemd for 2x this, this often


class Notifier:
    """Sends sd_notify messages when running under systemd (or a test's socket); else a no-op."""

    def __init__(self) -> None:
        self._socket_path = os.environ.get("NOTIFY_SOCKET", "")
        self.watchdog_interval_s = _watchdog_interval()
        self._notifier = None
        if self._socket_path:
            import sdnotify

            self._notifier = sdnotify.SystemdNotifier()
            if getattr(self._notifier, "socket", None) is None:
                logger.debug("sd_notify socket unavailable path=%s", self._socket_path)
                self._notifier = None
        for key in _ENV_KEYS:
            os.environ.pop(key, None)

    @property
    def enabled(self) -> bool:
        return self._notifier is not None

    def notify(self, *lines: str) -> None:
        if self._notifier is None:
            return
        self._notifier.notify("\n".join(lines))

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    async def extend_stop_timeout(self, step_s: float = EXTEND_STEP_S) -> None:
        """While stopping takes long (a drain): ``EXTEND_TIMEOUT_USEC`` every ``step_s``, each
        granting twice that, until cancelled; then the unit's own stop timeout applies again."""
        if self._notifier is None:
            return
        while True:
            self.notify(f"EXTEND_TIMEOUT_USEC={int(step_s * 2 * 1_000_000)}")
            await asyncio.sleep(step_s)

    async def run_watchdog(self) -> None:
        """Ping ``WATCHDOG=1`` from the event loop at half the interval systemd asked for.

        Runs on the loop on purpose: a wedged loop stops the pings and systemd restarts us.
        """
        if self._notifier is None or self.watchdog_interval_s is None:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval_s)


def _watchdog_interval() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6 / 2

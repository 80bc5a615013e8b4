"""The only place that sets up log handlers: text or JSON, a TRACE level, a gate until the banner.

Text lines look like Nomad's hclog output::

    2026-11-25T03:40:00.123Z [INFO]  nomad.raft: cluster leadership acquired

JSON lines carry ``@level @message @module @timestamp`` like hclog's JSON format. Records logged
before the startup banner is printed are held back by ``GatedHandler`` and flushed after it, as
Nomad's gated writer does.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

__all__ = ["TRACE", "GatedHandler", "set_level", "setup_logging", "subsystem"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_LEVELS = {
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "OFF": logging.CRITICAL + 10,
}
_NAMES = {
    TRACE: "TRACE",
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "ERROR",
}


def subsystem(logger_name: str) -> str:
    """Map a module's logger name to Nomad's subsystem names (nomad, client, agent, http)."""
    name = logger_name.removeprefix("nomadd.")
    if name.startswith("agent.http"):
        return "http"
    if name.startswith("agent"):
        return "agent"
    if name.startswith("gossip"):
        return "nomad.serf"
    if name == "server" or name.startswith("server."):
        return "nomad" + name.removeprefix("server")
    return name


def _timestamp(created: float) -> str:
    ms = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{ms:03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = _NAMES.get(record.levelno, record.levelname)
        line = f"    {_timestamp(record.created)} {('[' + level + ']').ljust(7)} "
        line += f"{subsystem(record.name)}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "@level": _NAMES.get(record.levelno, record.levelname).lower(),
            "@message": record.getMessage(),
            "@module": subsystem(record.name),
            "@timestamp": _timestamp(record.created),
        }
        if record.exc_info:
            out["@error"] = self.formatException(record.exc_info)
        return json.dumps(out)


class GatedHandler(logging.StreamHandler[TextIO]):
    """Holds records until ``open()`` (after the banner), then writes them and passes through."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._held: list[logging.LogRecord] | None = []

    def emit(self, record: logging.LogRecord) -> None:
        if self._held is not None:
            self._held.append(record)
            return
        super().emit(record)

    def open(self) -> None:
        held, self._held = self._held or [], None
        for record in held:
            if record.levelno >= self.level:
                super().emit(record)
        self.flush()

    def close(self) -> None:
        """``logging.shutdown`` (every exit path) writes what is still held: no start-up line
        is lost when the process ends before the banner."""
        if self._held is not None:
            self.open()
        super().close()


def setup_logging(level: str, json_format: bool, stream: TextIO | None = None) -> GatedHandler:
    """Install the one root handler (replacing any) and return it, gated."""
    handler = GatedHandler(stream or sys.stdout)
    handler.setFormatter(JSONFormatter() if json_format else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    set_level(level)
    # Third-party libraries log at their own pace; keep them at INFO unless TRACE is asked for.
    for noisy in ("aiohttp.access", "asyncio", "zeroconf", "pyroute2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def set_level(level: str) -> None:
    """Apply a log level name (TRACE DEBUG INFO WARN ERROR OFF) to the root logger and handlers."""
    value = _LEVELS[level.upper()]
    root = logging.getLogger()
    root.setLevel(value)
    for h in root.handlers:
        h.setLevel(value)

"""The log line of a server stopping on an entry its FSM cannot apply names the cause."""

from __future__ import annotations

import logging

import pytest

from nomadd.server import raft
from nomadd.server.fsm import FSMFatalError


def test_the_fatal_log_line_carries_the_cause_and_its_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(raft.os, "_exit", exits.append)
    monkeypatch.setattr(raft.logging, "shutdown", lambda: None)
    try:
        try:
            raise ValueError("unpack(b) received extra data")
        except ValueError as cause:
            raise FSMFatalError("cannot decode raft entry type=16 index=19525") from cause
    except FSMFatalError as err:
        with caplog.at_level(logging.CRITICAL, logger=raft.logger.name):
            raft._fatal_exit(err)
    assert exits == [raft.EXIT_FSM_FATAL]
    (record,) = [r for r in caplog.records if "cannot apply" in r.getMessage()]
    assert "extra data" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1].__cause__ is not None

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from nomadd.agent.logging import TRACE, set_level, setup_logging, subsystem


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_subsystems_follow_nomad() -> None:
    assert subsystem("nomadd.server.raft") == "nomad.raft"
    assert subsystem("nomadd.server") == "nomad"
    assert subsystem("nomadd.agent.http.server") == "http"
    assert subsystem("nomadd.agent.command") == "agent"
    assert subsystem("nomadd.client.heartbeat") == "client.heartbeat"
    assert subsystem("nomadd.gossip.pool") == "nomad.serf"


def test_gate_holds_records_until_opened_then_text_format() -> None:
    out = io.StringIO()
    gate = setup_logging("DEBUG", json_format=False, stream=out)
    try:
        logging.getLogger("nomadd.server.raft").info("cluster leadership acquired term=%d", 2)
        assert out.getvalue() == ""
        gate.open()
        line = out.getvalue().strip()
        assert line.endswith("[INFO]  nomad.raft: cluster leadership acquired term=2")
        logging.getLogger("nomadd.client").debug("passes through")
        assert "[DEBUG] client: passes through" in out.getvalue()
    finally:
        set_level("INFO")


def test_json_format_and_levels() -> None:
    out = io.StringIO()
    gate = setup_logging("WARN", json_format=True, stream=out)
    try:
        gate.open()
        log = logging.getLogger("nomadd.agent")
        log.info("hidden")
        log.warning("shown key=%s", "v")
        records = [json.loads(x) for x in out.getvalue().splitlines()]
        assert records == [
            {
                "@level": "warn",
                "@message": "shown key=v",
                "@module": "agent",
                "@timestamp": records[0]["@timestamp"],
            }
        ]
        set_level("TRACE")
        log.log(TRACE, "deep")
        assert json.loads(out.getvalue().splitlines()[-1])["@level"] == "trace"
        set_level("OFF")
        log.error("silenced")
        assert "silenced" not in out.getvalue()
    finally:
        set_level("INFO")

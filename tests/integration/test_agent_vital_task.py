"""A vital background task that dies stops a real agent with exit 70 (EX_SOFTWARE), its
traceback in the log; a non-vital one is logged and the agent runs on."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.helpers import AgentProcess, dev_ports_config

pytestmark = pytest.mark.slow

# The real agent, with one method replaced by a planted bug before it starts (nothing in the
# product knows about it): ``python -c PLANT agent -dev ...``.
PLANT = """
import sys
import nomadd.client.client as client

async def planted(self, *args):
    raise RuntimeError("planted bug")

client.Client.{method} = planted
from nomadd.cli import main
sys.exit(main())
"""


def test_vital_task_dying_exits_70_with_its_traceback(tmp_path: Path) -> None:
    cfg, _ = dev_ports_config(tmp_path)
    # _heartbeat runs inside the client's heartbeat loop, a vital task
    agent = AgentProcess(["-dev", "-config", str(cfg)], entry=("-c", PLANT.format(method="_heartbeat")))
    try:
        assert agent.wait(30) == 70
        out = agent.output
        assert "background task failed component=client task=client-heartbeat vital=True" in out
        assert "Traceback (most recent call last)" in out and "RuntimeError: planted bug" in out
        assert "vital task failed, stopping the agent exit_code=70" in out
    finally:
        agent.stop()


def test_non_vital_task_dying_is_logged_and_the_agent_runs_on(tmp_path: Path) -> None:
    cfg, _ = dev_ports_config(tmp_path)
    # the periodic re-fingerprint is not vital: the node keeps its last fingerprint
    agent = AgentProcess(
        ["-dev", "-config", str(cfg)], entry=("-c", PLANT.format(method="_fingerprint_loop"))
    )
    try:
        agent.wait_line("background task failed component=client task=client-fingerprint vital=False", 60)
        agent.wait_line("RuntimeError: planted bug")
        time.sleep(0.5)
        assert agent.proc.poll() is None
        agent.signal(signal.SIGINT)
        assert agent.wait() == 1  # the ordinary forceful stop
    finally:
        agent.stop()

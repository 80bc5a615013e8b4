"""A crash during start-up (before the banner opens the log gate) still reaches the log, with
its traceback and the lines logged before it, and its traceback goes to stderr as well."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.helpers import ROOT, agent_env

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from nomadd.agent import agent

    async def start(self):
        logging.getLogger("nomadd.agent").info("start-up line before the crash")
        raise RuntimeError("boom during start-up")

    agent.Agent.start = start
    from nomadd.agent.command import run
    sys.exit(run(["-dev", "-bind", "127.0.0.1", "-log-level", "INFO"]))
    """
)


def test_a_start_up_crash_is_logged_with_its_traceback_and_printed_to_stderr() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=agent_env(), cwd=ROOT, timeout=60
    )
    assert proc.returncode == 70, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "start-up line before the crash" in proc.stdout
    assert "agent crashed" in proc.stdout
    assert "Traceback" in proc.stdout and "RuntimeError: boom during start-up" in proc.stdout
    assert "Traceback" in proc.stderr and "RuntimeError: boom during start-up" in proc.stderr

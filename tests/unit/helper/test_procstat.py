"""``/proc/<pid>/stat`` parsing (helper/procstat.py): fields after a command name that holds
spaces and parentheses, a process's CPU seconds growing as it works, and a gone pid."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from nomadd.helper.procstat import cpu_seconds, stat_fields

GONE_PID = 2**22 + 7  # above pid_max's ceiling: no such process


def test_fields_after_a_command_name_with_spaces_and_parentheses() -> None:
    # a child whose comm (prctl PR_SET_NAME, 15 bytes) is "a) (b c) x": a split on the first
    # ")" or on spaces would shift every field after it
    code = "import ctypes, sys, time; ctypes.CDLL(None).prctl(15, b'a) (b c) x', 0, 0, 0); print(1, flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"1\n"
        with open(f"/proc/{child.pid}/comm", "rb") as f:
            assert f.read() == b"a) (b c) x\n"
        rest = stat_fields(child.pid)
        assert rest is not None
        assert rest[0] in (b"S", b"R")  # field 3, state
        assert int(rest[1]) == os.getpid()  # field 4, ppid
        assert int(rest[19]) > 0  # field 22, start time
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


def test_cpu_seconds_grow_with_work_and_a_gone_pid_has_none() -> None:
    before = cpu_seconds(os.getpid())
    assert before is not None
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # 0.3 s of CPU, bounded by the CPU clock
        pass
    after = cpu_seconds(os.getpid())
    assert after is not None and after - before >= 0.2  # clock ticks: 10 ms resolution
    assert cpu_seconds(GONE_PID) is None and stat_fields(GONE_PID) is None

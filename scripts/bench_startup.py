"""scripts/bench startup: median time from exec to READY=1 of `nomadd agent -dev`.

Each run starts a fresh -dev agent with free ports and its own NOTIFY_SOCKET, times exec → the
READY=1 datagram, then stops it with SIGINT. The baseline is `python -c pass` with the same
interpreter, measured in the same run. Goal (issue 1): median ≤ 0.5 s.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import agent_env, dev_ports_config  # noqa: E402

GOAL_S = 0.5


def one_agent_run() -> float:
    with tempfile.TemporaryDirectory(prefix="nomadd-bench-") as tmp:
        t = Path(tmp)
        cfg, _ = dev_ports_config(t)
        sock_path = t / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        sock.settimeout(30)
        env = agent_env(NOTIFY_SOCKET=str(sock_path))
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "nomadd", "agent", "-dev", "-config", str(cfg)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                msg = sock.recv(4096).decode()
                if "READY=1" in msg.split("\n"):
                    return time.perf_counter() - start
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            sock.close()


def one_baseline_run() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    runs = max(runs, 10)
    one_agent_run()  # warm the page cache and .pyc files; not counted
    agent = [one_agent_run() for _ in range(runs)]
    base = [one_baseline_run() for _ in range(runs)]
    ma, mb = statistics.median(agent), statistics.median(base)
    print(
        f"startup: agent -dev exec -> READY=1  median {ma:.3f}s  (min {min(agent):.3f}s, "
        f"max {max(agent):.3f}s, {runs} runs)"
    )
    print(
        f"baseline: python -c pass             median {mb:.3f}s  (min {min(base):.3f}s, "
        f"max {max(base):.3f}s, {runs} runs)"
    )
    print(
        f"ratio agent/baseline: {ma / mb:.1f}x   goal: median <= {GOAL_S}s -> "
        f"{'met' if ma <= GOAL_S else 'NOT met'}"
    )
    print(f"cpu count: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

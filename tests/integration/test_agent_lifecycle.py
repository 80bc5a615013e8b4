"""Issue 1 acceptance on real agent processes: banner, signals, reload, config errors."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import AgentProcess, dev_ports_config, free_port, run_nomadd

pytestmark = pytest.mark.slow


def get_json(port: int, path: str) -> object:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def test_dev_agent_banner_self_and_interrupt(tmp_path: Path) -> None:
    cfg, http = dev_ports_config(tmp_path)
    agent = AgentProcess(["-dev", "-config", str(cfg)])
    try:
        agent.wait_line("==> nomadd agent started! Log data will stream in below:")
        out = agent.output
        assert f"==> Loaded configuration from {cfg}" in out
        assert "==> Starting nomadd agent..." in out
        assert "==> nomadd agent configuration:" in out
        assert f"            Bind Addrs: HTTP: [127.0.0.1:{http}]; RPC: 127.0.0.1:" in out
        assert "                Region: global (DC: dc1)" in out
        assert "             Log Level: DEBUG" in out
        keys = [
            line.split(":")[0].strip()
            for line in agent.lines
            if line.startswith("    ")
            and line[4:22].strip()
            and ": " in line
            and not line.startswith("    20")
        ]
        assert keys == sorted(keys) and "Node Id" in keys
        body = get_json(http, "/v1/agent/self")
        assert isinstance(body, dict)
        assert body["config"]["Region"] == "global"
        assert body["config"]["Server"]["RaftSecret"] == "<redacted>"
        agent.signal(signal.SIGINT)
        assert agent.wait() == 1
        assert "==> Caught signal: interrupt" in agent.output
    finally:
        agent.stop()


def test_sigterm_without_leave_is_forceful_exit_1(tmp_path: Path) -> None:
    cfg, _ = dev_ports_config(tmp_path)
    agent = AgentProcess(["-dev", "-config", str(cfg)])
    try:
        agent.wait_line("agent started!")
        agent.signal(signal.SIGTERM)
        assert agent.wait() == 1
        assert "==> Caught signal: terminated" in agent.output
        assert "Gracefully shutting down" not in agent.output
    finally:
        agent.stop()


def test_leave_on_terminate_is_graceful_exit_0(tmp_path: Path) -> None:
    cfg, _ = dev_ports_config(tmp_path)
    (tmp_path / "leave.toml").write_text("leave_on_terminate = true\n")
    agent = AgentProcess(["-dev", "-config", str(cfg), "-config", str(tmp_path / "leave.toml")])
    try:
        agent.wait_line("agent started!")
        agent.signal(signal.SIGTERM)
        assert agent.wait(30) == 0
        assert "==> Gracefully shutting down agent..." in agent.output
    finally:
        agent.stop()


def _server_config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "bad.toml"
    p.write_text(body)
    return p


BIND = 'bind_addr = "127.0.0.1"\n'
ADVERTISE = '[advertise]\nhttp = "127.0.0.1"\nraft = "127.0.0.1"\nserf = "127.0.0.1"\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[server]\nenabled = true\nfoo = 1\n", 'unknown key "server.foo"'),
        (
            '[server]\nenabled = true\nbootstrap_expect = "three"\n',
            "server.bootstrap_expect: expected an integer",
        ),
        (
            '[server]\nenabled = true\nheartbeat_grace = "10q"\n',
            'server.heartbeat_grace: invalid duration "10q"',
        ),
        (
            'log_level = "chatty"\n[server]\nenabled = true\n',
            "Invalid log level: chatty. Valid log levels are: [TRACE DEBUG INFO WARN ERROR OFF]",
        ),
        (
            '[server]\nenabled = true\nraft_secret = "0123456789abcdef0"\n',
            'Must specify "data_dir" config option or "data-dir" CLI flag',
        ),
        ('region = "bad region!"\n[server]\nenabled = true\n', "Region contains invalid characters"),
    ],
)
def test_config_errors_exit_1_with_one_clear_line(tmp_path: Path, body: str, expected: str) -> None:
    path = _server_config(tmp_path, BIND + body + ADVERTISE)
    res = run_nomadd(["agent", "-config", str(path)])
    assert res.returncode == 1
    assert "Traceback" not in res.stderr + res.stdout
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("==> ") and expected in lines[0]
    if "unknown key" in expected or "expected" in expected or "duration" in expected:
        assert str(path) in lines[0]


def test_permission_error_exits_1_before_listening(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    port = free_port()
    path = _server_config(
        tmp_path,
        BIND + f'data_dir = "{data}"\n[ports]\nhttp = {port}\n[server]\n'
        'enabled = true\nraft_secret = "0123456789abcdef0"\n' + ADVERTISE,
    )
    res = run_nomadd(["agent", "-config", str(path)])
    assert res.returncode == 1
    assert f"data dir {data} is writable by group or others (mode 0777); fix: chmod 0700 {data}" in res.stderr
    assert "Starting nomadd agent" not in res.stdout


def test_sighup_reload_applies_log_level_and_survives_bad_config(tmp_path: Path) -> None:
    ports, http = dev_ports_config(tmp_path)
    level = tmp_path / "level.toml"
    level.write_text('log_level = "INFO"\n')
    agent = AgentProcess(["-dev", "-config", str(ports), "-config", str(level)])
    try:
        agent.wait_line("agent started!")
        get_json(http, "/v1/agent/self")
        assert "request complete" not in agent.output  # DEBUG line, hidden at INFO
        level.write_text('log_level = "DEBUG"\n')
        agent.signal(signal.SIGHUP)
        agent.wait_line("reloaded configuration log_level=DEBUG")
        get_json(http, "/v1/agent/self")
        agent.wait_line("request complete method=GET path=/v1/agent/self")
        level.write_text('log_level = "DEBUG"\nbogus_key = 1\n')
        agent.signal(signal.SIGHUP)
        agent.wait_line("==> Failed to reload configs:")
        assert 'unknown key "bogus_key"' in agent.output
        assert get_json(http, "/v1/agent/self")["config"]["LogLevel"] == "DEBUG"
    finally:
        agent.signal(signal.SIGINT)
        agent.wait()
        agent.stop()


def test_retry_join_exhausted_exits_1(tmp_path: Path) -> None:
    closed = free_port()
    http, raft, serf = free_port(), free_port(), free_port()
    path = _server_config(
        tmp_path,
        BIND + f'data_dir = "{tmp_path}/data"\n[ports]\nhttp = {http}\nraft = {raft}\nserf = {serf}\n'
        '[server]\nenabled = true\nbootstrap_expect = 3\nraft_secret = "0123456789abcdef0"\n'
        f'[server.server_join]\nretry_join = ["127.0.0.1:{closed}"]\nretry_interval = "200ms"\nretry_max = 2\n'
        + ADVERTISE,
    )
    agent = AgentProcess(["-config", str(path)])
    try:
        assert agent.wait(30) == 1
        assert "==> max join retry exhausted, exiting" in agent.output
        assert agent.output.count("join failed") >= 2
    finally:
        agent.stop()

"""The files the Debian package ships, checked without building it (fast; docs/packaging.md).

- etc/server.toml and etc/client.toml load with the agent's own loader (unknown keys are errors),
  and so does every commented ``key = value`` example in them, in its table;
- the shipped server config is incomplete on purpose (no secret), which is why the unit has an
  ExecCondition: packaging/libexec/config-complete's verdicts and exit codes.
The booted-systemd test of the built package is test_systemd.py.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from nomadd.agent.config import ConfigSources, load_config, read_sources
from nomadd.agent.config_schema import check_file
from nomadd.structs.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
ETC = ROOT / "etc"
CONFIG_COMPLETE = ROOT / "packaging" / "libexec" / "config-complete"
INCOMPLETE = 3  # config-complete's "skip the start" status (not 1: SuccessExitStatus=1)
# The e2e container has only loopback; so would a test host without a private address.
LOOPBACK = (
    '\nbind_addr = "127.0.0.1"\n[advertise]\nhttp = "127.0.0.1"\nraft = "127.0.0.1"\nserf = "127.0.0.1"\n'
)


def _dropin(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / "conf.d"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return d


def test_server_toml_loads_with_a_secret(tmp_path: Path) -> None:
    d = _dropin(tmp_path, "10-secret.toml", LOOPBACK + '[server]\nraft_secret = "0123456789abcdef0123"\n')
    cfg, _ = load_config(ConfigSources(paths=(str(ETC / "server.toml"), str(d))))
    assert cfg.server.enabled
    assert not cfg.client.enabled
    assert cfg.data_dir == "/var/lib/nomad/server"
    assert cfg.server.bootstrap_expect == 3
    assert cfg.leave_on_terminate is False
    assert cfg.ports.http == 4646


def test_server_toml_alone_is_incomplete(tmp_path: Path) -> None:
    # The agent refuses a server without a secret: the package cannot ship one (it would be the
    # same on every machine), so the unit skips the start until the operator sets it.
    d = _dropin(tmp_path, "10-lo.toml", LOOPBACK)
    with pytest.raises(ConfigError, match="raft_secret"):
        load_config(ConfigSources(paths=(str(ETC / "server.toml"), str(d))))


def test_client_toml_loads(tmp_path: Path) -> None:
    d = _dropin(tmp_path, "10-lo.toml", LOOPBACK)
    cfg, _ = load_config(ConfigSources(paths=(str(ETC / "client.toml"), str(d))))
    assert cfg.client.enabled
    assert not cfg.server.enabled
    assert cfg.data_dir == "/var/lib/nomad/client"
    assert cfg.ports.http == 4656  # the server on the same host has 4646
    assert any(s.startswith("127.0.0.1:4646") for s in cfg.client.servers)
    assert cfg.leave_on_terminate is False


def _commented_examples(path: Path) -> list[tuple[str, str]]:
    """(table, "key = value") for every "# key = value" line, under the table it belongs to."""
    table, out = "", []
    for line in path.read_text().splitlines():
        header = re.match(r"^(?:# )?\[([a-z_.]+)\]\s*$", line)
        if header:
            table = header.group(1)
            continue
        m = re.match(r"^# ([a-z_]+ = .+?)(?:\s+#.*)?$", line)
        if m:
            out.append((table, m.group(1)))
    return out


@pytest.mark.parametrize("name", ["server.toml", "client.toml"])
def test_commented_examples_are_valid_keys(name: str) -> None:
    examples = _commented_examples(ETC / name)
    assert len(examples) >= 5, "the parser of commented examples found nothing"
    for table, line in examples:
        doc = f"[{table}]\n{line}\n" if table else f"{line}\n"
        data = tomllib.loads(doc)
        check_file(data, f"{name} (commented example {line!r})")


@pytest.mark.parametrize("name", ["server.toml", "client.toml"])
def test_shipped_files_pass_the_schema(name: str) -> None:
    read_sources([str(ETC / name)])


def _complete(role: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/usr/bin/python3", "-I", str(CONFIG_COMPLETE), role, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_config_complete_server(tmp_path: Path) -> None:
    d = tmp_path / "server.d"
    d.mkdir()
    r = _complete("server", ETC / "server.toml", d)
    assert r.returncode == INCOMPLETE, r.stderr
    assert "server.encrypt or server.raft_secret" in r.stderr
    (d / "secrets.toml").write_text('[server]\nencrypt = "k"\n')
    assert _complete("server", ETC / "server.toml", d).returncode == 0
    (d / "secrets.toml").write_text('[server]\nraft_secret = "s"\n')
    assert _complete("server", ETC / "server.toml", d).returncode == 0
    # Files that are not *.toml, or editor leftovers, do not count.
    (d / "secrets.toml").rename(d / "secrets.toml.bak")
    assert _complete("server", ETC / "server.toml", d).returncode == INCOMPLETE


def test_config_complete_client(tmp_path: Path) -> None:
    assert _complete("client", ETC / "client.toml").returncode == 0
    bare = tmp_path / "client.toml"
    bare.write_text("[client]\nenabled = true\n")
    assert _complete("client", bare).returncode == INCOMPLETE
    bare.write_text('[client]\nenabled = true\n[client.server_join]\nretry_join = ["dns+srv://x"]\n')
    assert _complete("client", bare).returncode == 0


def test_config_complete_leaves_broken_files_to_the_agent(tmp_path: Path) -> None:
    broken = tmp_path / "server.toml"
    broken.write_text("[server\n")
    r = _complete("server", broken)
    assert r.returncode == 0  # the agent starts and names the file and the error
    assert "leaving the verdict to the agent" in r.stderr


def test_config_complete_usage() -> None:
    assert _complete("neither").returncode == 2

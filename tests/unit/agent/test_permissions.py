"""Data-dir checks (docs/architecture.md §Permissions). The ownership cases need root to chown a dir to nobody."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from nomadd.agent.config import AgentConfig
from nomadd.agent.permissions import check_permissions
from nomadd.client.config import ClientConfig
from nomadd.server.config import ServerConfig
from nomadd.structs.errors import PermissionsError
from tests.helpers import is_root, need


def config(data_dir: Path, *, server: bool, client: bool) -> AgentConfig:
    d = str(data_dir)
    return AgentConfig(
        data_dir=d,
        server=ServerConfig(enabled=server, data_dir=os.path.join(d, "server"), raft_secret="x" * 16),
        client=ClientConfig(
            enabled=client, state_dir=os.path.join(d, "client"), alloc_dir=os.path.join(d, "alloc")
        ),
    )


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_creates_dirs_with_tight_modes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    check_permissions(config(data, server=True, client=True))
    assert mode(data) == 0o700 and mode(data / "server") == 0o700
    assert mode(data / "client") == 0o700 and mode(data / "alloc") == 0o711
    assert (data / "server").stat().st_uid == os.geteuid()


def test_server_refuses_world_writable_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    with pytest.raises(PermissionsError) as err:
        check_permissions(config(data, server=True, client=False))
    msg = str(err.value)
    assert str(data) in msg and "writable by group or others (mode 0777)" in msg and "chmod 0700" in msg
    assert mode(data) == 0o777  # nothing changed


def test_server_tightens_a_readable_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    warnings = check_permissions(config(data, server=True, client=False))
    assert any("had mode 0755; tightened it to 0700" in w for w in warnings)
    assert mode(data) == 0o700


@pytest.mark.parametrize("loose", [0o755, 0o777])
def test_client_tightens_loose_modes_with_a_warning(tmp_path: Path, loose: int) -> None:
    data = tmp_path / "data"
    (data / "client").mkdir(parents=True)
    data.chmod(loose)
    (data / "client").chmod(loose)
    warnings = check_permissions(config(data, server=False, client=True))
    assert mode(data) == 0o700 and mode(data / "client") == 0o700
    assert any(f"{data / 'client'} had mode {loose:04o}" in w for w in warnings)


@pytest.mark.root
@pytest.mark.parametrize(("server", "client"), [(True, False), (False, True)])
def test_dir_owned_by_another_user_is_refused(tmp_path: Path, server: bool, client: bool) -> None:
    need(is_root(), "chown to another user needs root")
    nobody = pwd.getpwnam("nobody")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chown(data, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(PermissionsError) as err:
        check_permissions(config(data, server=server, client=client))
    msg = str(err.value)
    assert f"data dir {data} is owned by nobody" in msg and "fix: chown -R root" in msg
    assert data.stat().st_uid == nobody.pw_uid


@pytest.mark.root
def test_server_as_root_warns_client_as_root_does_not(tmp_path: Path) -> None:
    need(is_root(), "needs root")
    warnings = check_permissions(config(tmp_path / "s", server=True, client=False))
    assert any("the server is running as root" in w for w in warnings)
    cfg = config(tmp_path / "c", server=False, client=True)
    assert not any("root" in w for w in check_permissions(cfg))
    dev = replace(config(tmp_path / "d", server=True, client=True), dev_mode=True)
    assert not any("running as root" in w for w in check_permissions(dev))

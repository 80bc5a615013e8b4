"""Data-dir ownership and mode checks, run before anything listens (docs/architecture.md §Permissions).

Server: warns when run as root; the data dir is created 0700 owned by the running user; a data
dir owned by another user, or writable by group/others, is refused; one merely readable by others
is tightened to 0700 with a warning. Client: the data dir must be
owned by the running user (root in production) with mode 0700: created so, tightened with a warning
when looser, refused when owned by someone else. Every refusal says the path, what is wrong and how
to fix it.
"""

from __future__ import annotations

import os
import pwd
import stat

from nomadd.agent.config import AgentConfig
from nomadd.structs.errors import PermissionsError

__all__ = ["check_permissions"]

DATA_DIR_MODE = 0o700
ALLOC_DIR_MODE = 0o711  # tasks running as other users must traverse into their alloc dirs


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_permissions(config: AgentConfig) -> list[str]:
    """Create or check the data dirs. Returns warnings to print; raises PermissionsError."""
    warnings: list[str] = []
    euid = os.geteuid()
    if config.server.enabled and euid == 0 and not config.dev_mode:
        warnings.append(
            "WARNING: the server is running as root; it needs no privileges. Run it as an "
            "unprivileged user (the nomad-server unit uses User=nomad)."
        )
    if config.client.enabled and euid != 0:
        warnings.append(
            f"WARNING: the client is not running as root: the exec driver is disabled and tasks "
            f"run as {_user(euid)}."
        )
    if not config.data_dir:
        return warnings
    warnings += _ensure_dir(config.data_dir, euid, tighten=config.client.enabled)
    if config.server.enabled:
        warnings += _ensure_dir(config.server.data_dir, euid, tighten=config.client.enabled)
    if config.client.enabled:
        warnings += _ensure_dir(config.client.state_dir, euid, tighten=True)
        warnings += _ensure_dir(config.client.alloc_dir, euid, tighten=True, mode=ALLOC_DIR_MODE)
    return warnings


def _ensure_dir(path: str, euid: int, *, tighten: bool, mode: int = DATA_DIR_MODE) -> list[str]:
    """Create ``path`` with ``mode`` or check an existing one; see the module docstring."""
    try:
        os.makedirs(os.path.dirname(path) or "/", mode=0o755, exist_ok=True)
        os.mkdir(path, mode)
        os.chmod(path, mode)  # mkdir's mode is masked by the umask
        return []
    except FileExistsError:
        pass
    except OSError as err:
        raise PermissionsError(
            f"data dir {path}: cannot create it: {err.strerror}; create it as the agent's user "
            f"({_user(euid)}) with mode {mode:04o}, or choose another data_dir"
        ) from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionsError(f"data dir {path}: exists and is not a directory")
    if st.st_uid != euid:
        raise PermissionsError(
            f"data dir {path} is owned by {_user(st.st_uid)} (uid {st.st_uid}) but the agent runs "
            f"as {_user(euid)} (uid {euid}); fix: chown -R {_user(euid)} {path}"
        )
    current = stat.S_IMODE(st.st_mode)
    loose = current & ~mode & 0o777
    if not loose:
        return []
    if current & 0o022 and not tighten:
        raise PermissionsError(
            f"data dir {path} is writable by group or others (mode {current:04o}); "
            f"fix: chmod {mode:04o} {path}"
        )
    os.chmod(path, mode)
    return [f"WARNING: data dir {path} had mode {current:04o}; tightened it to {mode:04o}"]

"""The task environment Nomad gives every task (``client/taskenv``), for the task runner.

:func:`build_task_env` returns the complete env to put in ``TaskConfig.env``: the agent's
environment minus :data:`DEFAULT_ENV_DENYLIST` (Nomad's ``env.denylist``; raw_exec and exec tasks
inherit the host env in Nomad) and minus systemd's notify/watchdog variables, then the job's
``env`` block, then the ``NOMAD_*`` variables (which the job cannot override).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from nomadd.drivers.base import clean_env

# Nomad's default client "env.denylist": credentials the agent may hold.
DEFAULT_ENV_DENYLIST = frozenset(
    {
        "CONSUL_TOKEN",
        "CONSUL_HTTP_TOKEN",
        "CONSUL_LICENSE",
        "VAULT_TOKEN",
        "VAULT_LICENSE",
        "NOMAD_LICENSE",
        "NOMAD_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
    }
)
_META_KEY = re.compile(r"[^A-Za-z0-9_]")


def build_task_env(
    *,
    alloc_root: str,
    alloc_id: str,
    alloc_name: str,
    alloc_index: int,
    job_id: str,
    job_name: str,
    group: str,
    task: str,
    namespace: str = "default",
    region: str = "global",
    datacenter: str = "dc1",
    node_id: str = "",
    cpu_mhz: int = 0,
    memory_mb: int = 0,
    meta: Mapping[str, str] | None = None,
    task_env: Mapping[str, str] | None = None,
    ports: Sequence[tuple[str, str, int, int]] = (),
    host_env: Mapping[str, str] | None = None,
    denylist: frozenset[str] = DEFAULT_ENV_DENYLIST,
) -> dict[str, str]:
    """The env of one task; ``host_env`` defaults to the agent's ``os.environ``."""
    source = os.environ if host_env is None else host_env
    env = {k: v for k, v in source.items() if k not in denylist}
    env.update(task_env or {})
    alloc_path = os.path.join(alloc_root, alloc_id)
    task_path = os.path.join(alloc_path, task)
    env.update(
        {
            "NOMAD_ALLOC_DIR": os.path.join(alloc_path, "alloc"),
            "NOMAD_TASK_DIR": os.path.join(task_path, "local"),
            "NOMAD_SECRETS_DIR": os.path.join(task_path, "secrets"),
            "NOMAD_ALLOC_ID": alloc_id,
            "NOMAD_SHORT_ALLOC_ID": alloc_id[:8],
            "NOMAD_ALLOC_NAME": alloc_name,
            "NOMAD_ALLOC_INDEX": str(alloc_index),
            "NOMAD_TASK_NAME": task,
            "NOMAD_GROUP_NAME": group,
            "NOMAD_JOB_ID": job_id,
            "NOMAD_JOB_NAME": job_name,
            "NOMAD_NAMESPACE": namespace,
            "NOMAD_REGION": region,
            "NOMAD_DC": datacenter,
            "NOMAD_CPU_LIMIT": str(cpu_mhz),
            "NOMAD_MEMORY_LIMIT": str(memory_mb),
        }
    )
    if node_id:
        env["NOMAD_NODE_ID"] = node_id
    for label, ip, host_port, to in ports:  # (label, host IP, host port, port inside: 0 = the same)
        inside = to or host_port
        env[f"NOMAD_IP_{label}"] = env[f"NOMAD_HOST_IP_{label}"] = ip
        env[f"NOMAD_PORT_{label}"] = str(inside)
        env[f"NOMAD_HOST_PORT_{label}"] = str(host_port)
        env[f"NOMAD_ADDR_{label}"] = f"{ip}:{inside}"
        env[f"NOMAD_HOST_ADDR_{label}"] = f"{ip}:{host_port}"
    for key, value in (meta or {}).items():
        safe = _META_KEY.sub("_", key)
        env[f"NOMAD_META_{safe}"] = value
        env[f"NOMAD_META_{safe.upper()}"] = value
    return clean_env(env)

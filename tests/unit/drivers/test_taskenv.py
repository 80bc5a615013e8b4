from __future__ import annotations

from nomadd.drivers.taskenv import build_task_env


def test_task_env() -> None:
    env = build_task_env(
        alloc_root="/var/lib/nomad/alloc",
        alloc_id="0123456789abcdef",
        alloc_name="web.api[2]",
        alloc_index=2,
        job_id="web",
        job_name="web",
        group="api",
        task="server",
        cpu_mhz=250,
        memory_mb=128,
        meta={"team": "core", "build-id": "7"},
        task_env={"PORT": "8080", "NOMAD_TASK_NAME": "spoofed"},
        host_env={
            "PATH": "/usr/bin",
            "VAULT_TOKEN": "s.secret",
            "NOTIFY_SOCKET": "/run/systemd/notify",
            "WATCHDOG_USEC": "30000000",
        },
    )
    assert env["PATH"] == "/usr/bin"
    assert env["PORT"] == "8080"
    assert env["NOMAD_TASK_NAME"] == "server"  # the job cannot override NOMAD_*
    assert env["NOMAD_ALLOC_DIR"] == "/var/lib/nomad/alloc/0123456789abcdef/alloc"
    assert env["NOMAD_TASK_DIR"] == "/var/lib/nomad/alloc/0123456789abcdef/server/local"
    assert env["NOMAD_SECRETS_DIR"] == "/var/lib/nomad/alloc/0123456789abcdef/server/secrets"
    assert env["NOMAD_SHORT_ALLOC_ID"] == "01234567"
    assert env["NOMAD_ALLOC_INDEX"] == "2"
    assert env["NOMAD_CPU_LIMIT"] == "250"
    assert env["NOMAD_MEMORY_LIMIT"] == "128"
    assert env["NOMAD_META_team"] == env["NOMAD_META_TEAM"] == "core"
    assert env["NOMAD_META_BUILD_ID"] == "7"
    for gone in ("VAULT_TOKEN", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
        assert gone not in env

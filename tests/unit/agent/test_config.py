from __future__ import annotations

import base64
from pathlib import Path

import pytest

from nomadd.agent.config import ConfigSources, load_config
from nomadd.structs.errors import ConfigError

SECRET = 'raft_secret = "0123456789abcdef0123"'


def load(tmp_path: Path, *texts: str, flags: dict[str, object] | None = None, dev: bool = False):
    paths = []
    for i, text in enumerate(texts):
        p = tmp_path / f"c{i}.toml"
        p.write_text(text)
        paths.append(str(p))
    cfg, _warnings = load_config(
        ConfigSources(
            paths=tuple(paths), flags=flags or {}, dev=dev, dev_data_dir=str(tmp_path / "dev") if dev else ""
        )
    )
    return cfg


def server_toml(tmp_path: Path, extra: str = "") -> str:
    return (
        f'data_dir = "{tmp_path}/data"\nbind_addr = "10.1.2.3"\n[server]\nenabled = true\n{SECRET}\n{extra}'
    )


def test_defaults_match_nomad(tmp_path: Path) -> None:
    cfg = load(tmp_path, server_toml(tmp_path))
    assert (cfg.region, cfg.datacenter, cfg.log_level) == ("global", "dc1", "INFO")
    assert (cfg.ports.http, cfg.ports.raft, cfg.ports.serf) == (4646, 4647, 4648)
    s = cfg.server
    assert (s.heartbeat_grace, s.min_heartbeat_ttl, s.max_heartbeats_per_second) == (10.0, 10.0, 50.0)
    assert (s.failover_heartbeat_ttl, s.node_gc_threshold) == (300.0, 86400.0)
    assert s.server_join.retry_interval == 30.0 and s.server_join.retry_max == 0
    assert s.data_dir == f"{tmp_path}/data/server"
    assert cfg.advertise.http == "10.1.2.3:4646" and cfg.advertise.raft == "10.1.2.3:4647"


def test_server_and_client_configs_carry_the_agent_wide_settings(tmp_path: Path) -> None:
    """The server and the client never see AgentConfig: what they read of the agent-wide
    settings is copied into their own configs, from the same values."""
    both = server_toml(tmp_path) + '\n[client]\nenabled = true\nservers = ["10.9.9.9"]\n'
    cfg = load(tmp_path, 'region = "eu"\ndatacenter = "d2"\nname = "n1"\n' + both)
    for sub in (cfg.server, cfg.client):
        assert (sub.region, sub.datacenter, sub.name, sub.dev_mode) == ("eu", "d2", "n1", False)
        assert sub.advertise == cfg.advertise and sub.discovery == cfg.discovery
    assert (cfg.server.bind_addr, cfg.server.ports, cfg.server.addresses) == (
        cfg.bind_addr,
        cfg.ports,
        cfg.addresses,
    )
    # the client falls back to its own agent's server only when there is one
    assert cfg.client.local_server == cfg.advertise.http == "10.1.2.3:4646"
    client_only = load(
        tmp_path, f'data_dir = "{tmp_path}/c"\nbind_addr = "10.1.2.3"\n[client]\nenabled = true\n'
    )
    assert client_only.client.local_server == ""
    # /v1/agent/self shows each agent-wide setting once, at the top
    shown = cfg.redacted()
    assert "region" not in shown["server"] and "local_server" not in shown["client"]
    assert shown["region"] == "eu"


def test_dev_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, dev=True)
    assert cfg.server.enabled and cfg.client.enabled and cfg.dev_mode
    assert cfg.bind_addr == "127.0.0.1" and cfg.log_level == "DEBUG"
    assert cfg.server.bootstrap_expect == 1 and cfg.client.raw_exec_enabled
    assert cfg.server.raft_secret  # generated
    assert cfg.data_dir == str(tmp_path / "dev")


def test_later_file_wins_flags_win_over_files(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        server_toml(tmp_path, 'heartbeat_grace = "5s"'),
        'region = "eu"\nlog_level = "debug"\n[server]\nheartbeat_grace = "7s"',
        flags={"region": "us", "server": {"bootstrap_expect": 3}},
    )
    assert cfg.server.heartbeat_grace == 7.0
    assert cfg.region == "us" and cfg.log_level == "DEBUG" and cfg.server.bootstrap_expect == 3


def test_lists_and_maps_merge_like_nomad(tmp_path: Path) -> None:
    base = f'data_dir = "{tmp_path}/d"\nbind_addr = "10.0.0.9"\n[client]\nenabled = true\n'
    cfg = load(
        tmp_path,
        base
        + 'servers = ["a"]\nmeta = { rack = "r1", zone = "z" }\n[client.server_join]\nretry_join = ["x"]',
        '[client]\nservers = ["b", "a"]\nmeta = { rack = "r2" }\n[client.server_join]\nretry_join = ["y"]',
    )
    assert cfg.client.servers == ("a", "b")  # client.servers appends
    assert dict(cfg.client.meta) == {"rack": "r2", "zone": "z"}  # maps merge key-wise
    assert cfg.client.server_join.retry_join == ("y",)  # server_join lists replace


def test_directory_loads_toml_in_lexical_order(tmp_path: Path) -> None:
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "20-b.toml").write_text('region = "second"')
    (d / "10-a.toml").write_text(f'region = "first"\n{server_toml(tmp_path)}')
    (d / "ignored.hcl").write_text("not toml")
    (d / "30-c.toml~").write_text("garbage ===")
    cfg, _ = load_config(ConfigSources(paths=(str(d),)))
    assert cfg.region == "second"
    assert [Path(f).name for f in cfg.files] == ["10-a.toml", "20-b.toml"]


def test_empty_directory_warns(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg_file = tmp_path / "s.toml"
    cfg_file.write_text(server_toml(tmp_path))
    _, warnings = load_config(ConfigSources(paths=(str(cfg_file), str(empty))))
    assert warnings == (f"No configuration loaded from {empty}",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nbogus = 1", r'c0.toml: unknown key "server.bogus"'),
        ("colour = 1", r'c0.toml: unknown key "colour"'),
        (
            '[server]\nbootstrap_expect = "3"',
            r'c0.toml: server.bootstrap_expect: expected an integer, got string "3"',
        ),
        ("log_json = 1", r"c0.toml: log_json: expected a boolean"),
        (
            '[server]\nheartbeat_grace = "10 seconds"',
            r'c0.toml: server.heartbeat_grace: invalid duration "10 seconds"',
        ),
        ("[server]\nheartbeat_grace = 10", r"server.heartbeat_grace: expected a duration string"),
        ("server = 3", r"c0.toml: server: expected a table"),
        ("region = [", r"c0.toml: invalid TOML"),
    ],
)
def test_file_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


@pytest.mark.parametrize(
    ("extra", "flags", "message"),
    [
        (
            'log_level = "LOUD"',
            {},
            r"^Invalid log level: LOUD\. Valid log levels are: \[TRACE DEBUG INFO WARN ERROR OFF\]$",
        ),
        ('region = "eu west"', {}, "^Region contains invalid characters$"),
        ('datacenter = "dc*"', {}, "Datacenter contains invalid characters"),
        ("", {"data_dir": "relative/dir"}, "data-dir must be given as an absolute path: got relative/dir"),
        ("[server]\nraft_protocol = 2", {}, "raft_protocol must be 3"),
        ('[server]\nencrypt = "bm90LWEta2V5"', {}, "key must be 16, 24 or 32 bytes"),
        ('[acl]\ntoken_ttl = "soon"', {}, 'acl.token_ttl: invalid duration "soon"'),
        (
            '[acl]\ntoken_min_expiration_ttl = "2h"\ntoken_max_expiration_ttl = "1h"',
            {},
            "acl.token_min_expiration_ttl must not be greater than acl.token_max_expiration_ttl",
        ),
    ],
)
def test_semantic_errors(tmp_path: Path, extra: str, flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, server_toml(tmp_path), extra, flags=flags)


def test_server_needs_data_dir_outside_dev(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='^Must specify "data_dir" config option or "data-dir" CLI flag$'):
        load(tmp_path, f'bind_addr = "10.0.0.1"\n[server]\nenabled = true\n{SECRET}')


def test_mode_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Must specify either server, client or dev mode"):
        load(tmp_path, 'region = "x"')


def test_bootstrap_requires_server(tmp_path: Path) -> None:
    text = f'data_dir = "{tmp_path}"\nbind_addr = "10.0.0.1"\n[client]\nenabled = true\n[server]\nbootstrap_expect = 3'
    with pytest.raises(ConfigError, match="Bootstrap requires server mode to be enabled"):
        load(tmp_path, text)


def test_server_needs_a_cluster_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server.raft_secret: servers need a cluster secret"):
        load(tmp_path, f'data_dir = "{tmp_path}"\nbind_addr = "10.0.0.1"\n[server]\nenabled = true')
    key = base64.b64encode(b"k" * 32).decode()
    cfg = load(
        tmp_path,
        f'data_dir = "{tmp_path}"\nbind_addr = "10.0.0.1"\n[server]\nenabled = true\nencrypt = "{key}"',
    )
    assert cfg.server.encrypt == b"k" * 32 and len(cfg.server.raft_secret) == 64
    assert "<redacted>" in str(cfg.redacted()["server"]) and key not in str(cfg.redacted())


def test_client_only_agent_needs_only_http_advertise(tmp_path: Path) -> None:
    text = f'data_dir = "{tmp_path}"\nbind_addr = "127.0.0.1"\n[client]\nenabled = true\nservers = ["127.0.0.1:4647"]\n'
    with pytest.raises(ConfigError, match="advertise.http: Defaulting advertise"):
        load(tmp_path, text)
    cfg = load(tmp_path, text + '[advertise]\nhttp = "127.0.0.1"\n')
    assert (cfg.advertise.http, cfg.advertise.raft, cfg.advertise.serf) == ("127.0.0.1:4646", "", "")


def test_loopback_bind_needs_advertise_outside_dev(tmp_path: Path) -> None:
    text = f'data_dir = "{tmp_path}"\nbind_addr = "127.0.0.1"\n[server]\nenabled = true\n{SECRET}'
    with pytest.raises(ConfigError, match="Defaulting advertise to localhost is unsafe"):
        load(tmp_path, text)
    cfg = load(
        tmp_path, text + '\n[advertise]\nhttp = "127.0.0.1"\nraft = "127.0.0.1:9000"\nserf = "127.0.0.1"'
    )
    assert (cfg.advertise.http, cfg.advertise.raft, cfg.advertise.serf) == (
        "127.0.0.1:4646",
        "127.0.0.1:9000",
        "127.0.0.1:4648",
    )


def test_client_start_join_rejected(tmp_path: Path) -> None:
    text = f'data_dir = "{tmp_path}"\nbind_addr = "10.0.0.1"\n[client]\nenabled = true\n[client.server_join]\nstart_join = ["a"]'
    with pytest.raises(ConfigError, match="start_join is not supported for Nomad clients"):
        load(tmp_path, text)


def test_raw_exec_enabled_by_plugin_block_or_option(tmp_path: Path) -> None:
    base = f'data_dir = "{tmp_path}"\nbind_addr = "10.0.0.1"\n[client]\nenabled = true\n'
    assert not load(tmp_path, base).client.raw_exec_enabled
    assert load(tmp_path, base + "\n[plugin.raw_exec.config]\nenabled = true").client.raw_exec_enabled
    assert load(tmp_path, base + 'options = { "driver.raw_exec.enable" = "1" }').client.raw_exec_enabled


def test_client_drain_on_shutdown_block(tmp_path: Path) -> None:
    from nomadd.client.config import DrainOnShutdown

    base = f'data_dir = "{tmp_path}"\nbind_addr = "10.0.0.1"\n[client]\nenabled = true\n'
    assert load(tmp_path, base).client.drain_on_shutdown is None
    empty = load(tmp_path, base + "[client.drain_on_shutdown]\n").client.drain_on_shutdown
    assert empty == DrainOnShutdown(
        deadline=3600.0, force=False, ignore_system_jobs=False
    )  # Nomad's defaults
    text = base + '[client.drain_on_shutdown]\ndeadline = "90s"\nforce = true\nignore_system_jobs = true\n'
    assert load(tmp_path, text).client.drain_on_shutdown == DrainOnShutdown(
        deadline=90.0, force=True, ignore_system_jobs=True
    )
    with pytest.raises(
        ConfigError, match=r'c0.toml: client.drain_on_shutdown.deadline: invalid duration "soon"'
    ):
        load(tmp_path, base + '[client.drain_on_shutdown]\ndeadline = "soon"\n')
    with pytest.raises(ConfigError, match=r'c0.toml: unknown key "client.drain_on_shutdown.forse"'):
        load(tmp_path, base + "[client.drain_on_shutdown]\nforse = true\n")
    with pytest.raises(
        ConfigError, match=r'c0.toml: client.drain_on_shutdown.deadline: negative duration "-5s"'
    ):
        load(tmp_path, base + '[client.drain_on_shutdown]\ndeadline = "-5s"\n')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[server]\n[server.server_join]\nretry_join = ["host:notaport"]', "server.server_join.retry_join: "),
        ('[server]\n[server.server_join]\nstart_join = ["dns+srv://"]', "server.server_join.start_join: "),
        ('[client]\nenabled = true\nservers = ["mdns://?colour=red"]', "client.servers: "),
        ('[discovery]\ndns_resolvers = ["resolver.example.com"]', "discovery.dns_resolvers: "),
    ],
)
def test_malformed_discovery_entries_fail_at_start(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, server_toml(tmp_path), text)


def test_well_formed_discovery_entries_load(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        server_toml(tmp_path),
        '[server.server_join]\nretry_join = ["10.0.0.1", "nomad-1:4648", "[::1]:4648", '
        '"dns+srv://_nomad-server._tcp.example.com?resolver=127.0.0.1:5353", "mdns://?region=eu"]\n'
        '[discovery]\ndns_resolvers = ["127.0.0.1:5353"]',
    )
    assert len(cfg.server.server_join.retry_join) == 5


def test_acl_block_and_flag(tmp_path: Path) -> None:
    cfg = load(tmp_path, server_toml(tmp_path), '[acl]\nenabled = true\ntoken_ttl = "1m"')
    assert cfg.acl.enabled and cfg.acl.token_ttl == 60.0 and cfg.acl.policy_ttl == 30.0
    assert cfg.server.acl == cfg.acl
    assert not load(tmp_path, server_toml(tmp_path)).acl.enabled
    assert load(tmp_path, server_toml(tmp_path), flags={"acl": {"enabled": True}}).server.acl.enabled


def test_autopilot_block_and_scheduled_snapshots(tmp_path: Path) -> None:
    cfg = load(tmp_path, server_toml(tmp_path))
    ap = cfg.server.autopilot
    assert (ap.cleanup_dead_servers, ap.last_contact_threshold_s, ap.max_trailing_logs) == (True, 0.2, 250)
    assert (ap.server_stabilization_time_s, ap.min_quorum) == (10.0, 0)  # Nomad's defaults
    assert cfg.server.snapshot_interval == 0.0 and cfg.server.snapshot_retain == 24
    assert cfg.server.snapshot_path == str(tmp_path / "data" / "server" / "snapshots")
    extra = (
        '\n[autopilot]\ncleanup_dead_servers = false\nlast_contact_threshold = "1s"\nmin_quorum = 3\n'
        '\n[server.snapshot]\ninterval = "1h"\nretain = 5\npath = "/srv/snaps"\n'
    )
    cfg = load(tmp_path, server_toml(tmp_path, extra))
    assert not cfg.server.autopilot.cleanup_dead_servers and cfg.server.autopilot.min_quorum == 3
    assert cfg.server.autopilot.last_contact_threshold_s == 1.0
    assert (cfg.server.snapshot_interval, cfg.server.snapshot_retain, cfg.server.snapshot_path) == (
        3600.0,
        5,
        "/srv/snaps",
    )
    for bad, message in (
        ("\n[server.snapshot]\nretain = 0\n", "retain: must be at least 1"),
        ('\n[autopilot]\nlast_contact_threshold = "0s"\n', "last_contact_threshold must be positive"),
        ("\n[autopilot]\nmax_trailing = 1\n", 'unknown key "autopilot.max_trailing"'),
    ):
        with pytest.raises(ConfigError, match=message):
            load(tmp_path, server_toml(tmp_path, bad))


def test_tls_block_reaches_server_and_client(tmp_path: Path) -> None:
    tls = (
        '[tls]\nhttp = true\nrpc = true\nca_file = "/etc/nomad/ca.pem"\ncert_file = "/etc/nomad/c.pem"\n'
        'key_file = "/etc/nomad/k.pem"\nverify_server_hostname = true\ntls_min_version = "tls13"\n'
    )
    both = server_toml(tmp_path) + '\n[client]\nenabled = true\nservers = ["10.9.9.9"]\n'
    cfg = load(tmp_path, 'region = "eu"\n' + both, tls)
    assert cfg.tls.enabled and cfg.tls.verify_server_hostname and not cfg.tls.verify_https_client
    assert (cfg.tls.region, cfg.tls.tls_min_version, cfg.tls.cert_file) == ("eu", "tls13", "/etc/nomad/c.pem")
    assert cfg.server.tls == cfg.client.tls == cfg.tls
    assert not load(tmp_path, server_toml(tmp_path)).tls.enabled  # off by default, as Nomad


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[tls]\nhttp = true\nrpc = true\nca_file = "ca.pem"', "tls.ca_file: must be an absolute path"),
        (
            '[tls]\nhttp = true\nca_file = "/a"\ncert_file = "/b"\nkey_file = "/c"',
            "tls.http and tls.rpc must be equal",
        ),
        ('[tls]\nhttp = true\nrpc = true\nca_file = "/a"\ncert_file = "/b"', "tls.key_file: required"),
        ('[tls]\ntls_min_version = "ssl3"', 'tls.tls_min_version: "ssl3" is not one of'),
        ("[tls]\nverify_https_client = 1", "tls.verify_https_client: expected a boolean"),
    ],
)
def test_tls_errors_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, server_toml(tmp_path), extra)


def test_open_api_warning_stays_until_tls_and_acls(tmp_path: Path) -> None:
    from dataclasses import replace

    from nomadd.agent.command import _startup_warnings
    from nomadd.structs.config import TLSConfig

    cfg = load(tmp_path, server_toml(tmp_path))
    (plain,) = [w for w in _startup_warnings(cfg) if "HTTP API" in w]
    assert "no TLS and no ACLs" in plain
    on = replace(cfg, tls=TLSConfig(http=True, rpc=True, ca_file="/a", cert_file="/b", key_file="/c"))
    (tls_only,) = [w for w in _startup_warnings(on) if "HTTP API" in w]
    assert "no ACLs" in tls_only and "TLS" not in tls_only
    both = replace(on, acl=replace(on.acl, enabled=True))
    assert [w for w in _startup_warnings(both) if "HTTP API" in w] == []


def test_federation_settings(tmp_path: Path) -> None:
    extra = 'authoritative_region = "east"\n[acl]\nreplication_token = "s3cret"\nreplication_interval = "2s"'
    cfg = load(tmp_path, 'region = "west"\n' + server_toml(tmp_path, extra))
    assert cfg.server.authoritative_region == "east" and cfg.server.region == "west"
    assert cfg.server.acl.replication_token == "s3cret" and cfg.server.acl.replication_interval == 2.0
    assert "s3cret" not in str(cfg.redacted()) and "s3cret" not in repr(cfg)
    assert load(tmp_path, server_toml(tmp_path)).server.authoritative_region == ""
    with pytest.raises(ConfigError, match="authoritative_region"):
        load(tmp_path, server_toml(tmp_path, 'authoritative_region = "no spaces"'))


def test_docker_plugin_config_reaches_the_client(tmp_path: Path) -> None:
    base = f'data_dir = "{tmp_path}"\nbind_addr = "10.0.0.1"\n[client]\nenabled = true\n'
    text = (
        base
        + '[plugin.docker.config]\nendpoint = "unix:///run/podman.sock"\nallow_privileged = true\n'
        + '[plugin.docker.config.volumes]\nenabled = true\n[plugin.docker.config.gc]\nimage_delay = "10m"\n'
    )
    docker = load(tmp_path, text).client.plugin_config["docker"]
    assert docker["endpoint"] == "unix:///run/podman.sock" and docker["allow_privileged"] is True
    assert docker["volumes"] == {"enabled": True} and docker["gc"] == {"image_delay": 600.0}
    with pytest.raises(ConfigError, match="plugin.docker.config.gc.image_delay"):
        load(tmp_path, base + '[plugin.docker.config.gc]\nimage_delay = "soon"\n')


def test_scheduler_split(tmp_path: Path) -> None:
    s = load(tmp_path, server_toml(tmp_path)).server
    assert (s.leader_schedulers, s.follower_schedulers, s.eval_nack_timeout) == (None, 0, 60.0)
    extra = 'leader_schedulers = 0\nfollower_schedulers = 16\neval_nack_timeout = "5s"'
    s = load(tmp_path, server_toml(tmp_path, extra)).server
    assert (s.leader_schedulers, s.follower_schedulers, s.eval_nack_timeout) == (0, 16, 5.0)
    for bad, message in (
        ("leader_schedulers = 0", "nothing would schedule"),
        ("follower_schedulers = -1", "must be 0 or more"),
        ('eval_nack_timeout = "0s"', "must be positive"),
    ):
        with pytest.raises(ConfigError, match=message):
            load(tmp_path, server_toml(tmp_path, bad))

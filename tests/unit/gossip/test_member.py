"""GossipConfig validation and the public value types."""

from __future__ import annotations

import math

import pytest

from nomadd.gossip import DEFAULT_SERF_PORT, GossipConfig, MemberStatus
from nomadd.structs.errors import ConfigError


def test_defaults_match_serf_and_the_design() -> None:
    cfg = GossipConfig(name="a.global")
    assert cfg.bind_port == DEFAULT_SERF_PORT == 4648
    assert cfg.reconnect_timeout == 72 * 3600
    assert cfg.tombstone_timeout == 24 * 3600
    assert (cfg.probe_interval, cfg.probe_timeout, cfg.suspicion_mult) == (1.0, 0.5, 4)
    assert cfg.encrypt_key is None


def test_tags_are_copied() -> None:
    tags = {"role": "nomad"}
    cfg = GossipConfig(name="a.global", tags=tags)
    tags["role"] = "changed"
    assert cfg.tags == {"role": "nomad"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"bind_addr": "localhost"}, "bind_addr"),
        ({"advertise_addr": "server1.example.com"}, "advertise_addr"),
        ({"bind_port": 70000}, "bind_port"),
        ({"advertise_port": -1}, "advertise_port"),
        ({"probe_interval": 0}, "probe_interval"),
        ({"gossip_interval": math.inf}, "gossip_interval"),
        ({"probe_timeout": 2.0}, "probe_timeout"),
        ({"suspicion_mult": 0}, "suspicion_mult"),
        ({"indirect_checks": -1}, "indirect_checks"),
        ({"encrypt_key": b"x" * 17}, "encrypt"),
    ],
)
def test_invalid_settings_name_the_key(overrides: dict[str, object], field: str) -> None:
    settings: dict[str, object] = {"name": "a.global", **overrides}
    with pytest.raises(ConfigError, match=field):
        GossipConfig(**settings)  # type: ignore[arg-type]


def test_statuses_are_the_serf_strings() -> None:
    assert [s.value for s in MemberStatus] == ["alive", "suspect", "failed", "leaving", "left"]

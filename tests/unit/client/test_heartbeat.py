"""Client heartbeat retry rules (Nomad's getHeartbeatRetryIntv)."""

from __future__ import annotations

import random

import pytest

from nomadd.client.heartbeat import heartbeat_retry_delay, random_stagger, register_retry_delay


class _Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_register_retry_is_15_to_30s() -> None:
    assert register_retry_delay(_Fixed(0.0)) == 15.0
    assert register_retry_delay(_Fixed(0.5)) == 22.5
    assert random_stagger(0.0) == 0.0


@pytest.mark.parametrize(
    ("kw", "rnd", "want"),
    [
        ({"have_heartbeated": False, "no_leader": False}, 0.0, 15.0),  # never heartbeated
        ({"have_heartbeated": True, "no_leader": True}, 0.5, 22.5),  # no leader: like register
        ({"have_heartbeated": True, "no_leader": False, "now": 105.0}, 0.5, 1.5),  # missed by 5 s
        ({"have_heartbeated": True, "no_leader": False, "now": 50.0}, 0.5, 25.0),  # 50 s left, half
        ({"have_heartbeated": True, "no_leader": False, "now": 50.0}, 0.01, 1.01),  # < 1 s -> 1-2 s
        ({"have_heartbeated": True, "no_leader": False, "now": 0.0}, 0.9, 25.0 + 4.5),  # > 30 s
        ({"have_heartbeated": True, "no_leader": False, "now": 200.0}, 0.5, 27.5),  # missed by 100 s
        ({"have_heartbeated": True, "no_leader": False, "now": 140.0}, 0.5, 20.0),  # missed by 40 s
    ],
)
def test_heartbeat_retry_delay(kw: dict[str, object], rnd: float, want: float) -> None:
    args: dict[str, object] = {"now": 0.0, "last_ok": 0.0, "ttl": 100.0, **kw}
    assert heartbeat_retry_delay(rng=_Fixed(rnd), **args) == pytest.approx(want)  # type: ignore[arg-type]

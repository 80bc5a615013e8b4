"""The collector policy's freezing: counted without walking the permanent generation."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from nomadd.helper import gc_policy
from nomadd.server.state import store_codec


@pytest.fixture
def no_walk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """gc.get_freeze_count() walks every frozen object: 148 ms at 943,000 of them, which the
    end of a restore paid on Raft's tick thread. It must not be called."""

    def walk() -> int:
        raise AssertionError("gc.get_freeze_count() walks the permanent generation")

    enabled = gc.isenabled()
    monkeypatch.setattr(gc, "get_freeze_count", walk)
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def _long_lived(n: int) -> list[list[Any]]:
    return [[i] for i in range(n)]


def test_the_end_of_a_restore_freezes_what_it_built_without_walking_the_frozen(no_walk: None) -> None:
    before = gc_policy.frozen_objects()
    with store_codec._gc_paused():
        keep = _long_lived(50_000)
    assert gc_policy.frozen_objects() - before >= len(keep) * 0.99
    assert not any(o is keep for o in gc.get_objects())  # frozen: no generation holds it


def test_a_freeze_without_a_count_counts_the_young_generations(no_walk: None) -> None:
    gc_policy.freeze()
    gc.disable()
    before = gc_policy.frozen_objects()
    keep = _long_lived(30_000)
    young = gc_policy.young_objects()
    assert len(keep) * 0.99 <= young <= len(keep) + 1000
    gc_policy.freeze()
    assert abs(gc_policy.frozen_objects() - before - young) < 100  # counted again inside

"""Server unit-test fixtures."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_pysyncobj_leaks() -> Iterator[None]:
    """pysyncobj 0.3.17's journal opens ``<journal>.meta`` without closing it; collect those
    file objects here, with ResourceWarning ignored, so they do not surface in a later test."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()

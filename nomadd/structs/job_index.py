"""Nomad's EnforceIndex rule of a job register (``job run -check-index``), shared by the
endpoint (an early, clear 400) and the FSM (the same check at apply time, so of concurrent
registers made against one index only the first is applied)."""

from __future__ import annotations

__all__ = ["ENFORCE_INDEX_PREFIX", "enforce_index_problem"]

ENFORCE_INDEX_PREFIX = "Enforcing job modify index"  # Nomad's RegisterEnforceIndexErrPrefix


def enforce_index_problem(stored: int | None, given: int) -> str:
    """Why a register that expects JobModifyIndex ``given`` (0: no such job) may not apply when
    the stored job's is ``stored`` (None: no job); empty when it may. Nomad's words."""
    if stored is not None:
        if given == 0:
            return f"{ENFORCE_INDEX_PREFIX} 0: job already exists"
        if given != stored:
            return f"{ENFORCE_INDEX_PREFIX} {given}: job exists with conflicting job modify index: {stored}"
        return ""
    if given != 0:
        return f"{ENFORCE_INDEX_PREFIX} {given}: job does not exist"
    return ""

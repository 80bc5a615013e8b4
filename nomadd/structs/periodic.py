"""Periodic and parameterized jobs (Nomad's PeriodicConfig, ParameterizedJobConfig,
DispatchPayloadConfig and PeriodicLaunch), their validation and the cron arithmetic.

A job with an enabled ``Periodic`` or a ``ParameterizedJob`` is a *template*: registering it makes
no evaluation. The leader's periodic dispatcher (``server/periodic_dispatch.py``) launches
children ``<id>/periodic-<unix seconds>``; ``Job.Dispatch`` makes children
``<id>/dispatch-<unix seconds>-<8 hex>``. Children carry ``ParentID``.

Cron specs follow Nomad's cronexpr: 5 fields (minute hour day-of-month month day-of-week),
6 fields (the same plus a year) or 7 fields (a seconds field first, a year last), and the
``@hourly``-style shorthands. :func:`next_launch` evaluates them in the job's ``TimeZone``.
"""

from __future__ import annotations

import dataclasses
import datetime
import posixpath
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DISPATCH_LAUNCH_SUFFIX",
    "DISPATCH_PAYLOAD_SIZE_LIMIT",
    "PAYLOAD_FORBIDDEN",
    "PAYLOAD_OPTIONAL",
    "PAYLOAD_REQUIRED",
    "PERIODIC_LAUNCH_SUFFIX",
    "DispatchPayloadConfig",
    "ParameterizedJobConfig",
    "PeriodicConfig",
    "PeriodicLaunch",
    "launch_time_of",
    "meta_problem",
    "next_launch",
    "parameterized_problems",
    "payload_file_problem",
    "periodic_child_id",
    "periodic_problems",
]

PERIODIC_LAUNCH_SUFFIX = "/periodic-"  # Nomad's structs.PeriodicLaunchSuffix
DISPATCH_LAUNCH_SUFFIX = "/dispatch-"  # Nomad's structs.DispatchLaunchSuffix
DISPATCH_PAYLOAD_SIZE_LIMIT = 16 * 1024  # Nomad's DispatchPayloadSizeLimit (bytes, before base64)
PAYLOAD_OPTIONAL = "optional"
PAYLOAD_REQUIRED = "required"
PAYLOAD_FORBIDDEN = "forbidden"
SPEC_CRON = "cron"
_BATCH_TYPES = ("batch", "sysbatch")
_NS = 1_000_000_000
_MAX_ZONE_NAME = 128
_MAX_PROBLEM = 200  # croniter's messages repeat the spec


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PeriodicConfig:
    """``periodic {}``: defaults are those of Nomad's api.PeriodicConfig.Canonicalize."""

    enabled: bool = True
    spec: str = ""
    specs: tuple[str, ...] = ()
    spec_type: str = SPEC_CRON
    prohibit_overlap: bool = False
    time_zone: str = "UTC"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ParameterizedJobConfig:
    """``parameterized {}``: what a dispatch must (or may) carry."""

    payload: str = PAYLOAD_OPTIONAL
    meta_required: tuple[str, ...] = ()
    meta_optional: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DispatchPayloadConfig:
    """A task's ``dispatch_payload { file = ... }``: the payload is written to ``local/<file>``."""

    file: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PeriodicLaunch:
    """The last launch of a periodic job (Nomad's periodic_launch table), kept in Raft so that a
    new leader launches only what comes after it. The first row is the job's insertion time."""

    id: str = ""
    namespace: str = "default"
    launch: int = 0  # unix ns
    create_index: int = 0
    modify_index: int = 0


# ---- validation --------------------------------------------------------------------------


def _zone(name: str) -> datetime.tzinfo:
    if not name or name == "UTC":
        return datetime.UTC
    if name.startswith("/") or ".." in name.split("/") or len(name) > _MAX_ZONE_NAME:
        raise ValueError(f"invalid time zone {name[:_MAX_ZONE_NAME]!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError) as err:  # a directory: OSError
        raise ValueError(f"unknown time zone {name!r}") from err


def periodic_problems(cfg: PeriodicConfig, job_type: str, path: str = "Job.Periodic") -> list[str]:
    """Nomad's Job.Validate and PeriodicConfig.Validate (nothing to check when disabled)."""
    if not cfg.enabled:
        return []
    errs: list[str] = []
    if job_type not in _BATCH_TYPES:
        errs.append(f'{path}: Periodic can only be used with "batch" or "sysbatch" scheduler')
    if cfg.spec and cfg.specs:
        errs.append(f"{path}: Only cron or crons may be used")
    if not cfg.spec and not cfg.specs:
        errs.append(f"{path}.Spec: Must specify a spec")
    try:
        _zone(cfg.time_zone)
    except ValueError as err:
        errs.append(f"{path}.TimeZone: Invalid time zone: {err}")
    if cfg.spec_type != SPEC_CRON:
        errs.append(f"{path}.SpecType: Unknown periodic specification type {cfg.spec_type!r}")
        return errs
    for spec in (cfg.spec, *cfg.specs) if cfg.spec else cfg.specs:
        problem = _cron_problem(spec)
        if problem:
            errs.append(f"{path}.Spec: Invalid cron spec {spec[:_MAX_PROBLEM]!r}: {problem}")
    return errs


def parameterized_problems(cfg: ParameterizedJobConfig, job_type: str) -> list[str]:
    path = "Job.ParameterizedJob"
    errs: list[str] = []
    if job_type not in _BATCH_TYPES:
        errs.append(f'{path}: Parameterized job can only be used with "batch" or "sysbatch" scheduler')
    if cfg.payload not in (PAYLOAD_OPTIONAL, PAYLOAD_REQUIRED, PAYLOAD_FORBIDDEN):
        errs.append(f"{path}.Payload: Unknown payload requirement: {cfg.payload!r}")
    both = sorted(set(cfg.meta_required) & set(cfg.meta_optional))
    if both:
        errs.append(
            f"{path}: Required and optional meta keys should be disjoint. "
            f"Following keys exist in both: {both}"
        )
    return errs


def payload_file_problem(cfg: DispatchPayloadConfig) -> str:
    """Why ``local/<file>`` would escape the task directory ("" when it does not)."""
    if "\x00" in cfg.file:
        return "invalid destination path: contains a null character"
    if posixpath.isabs(cfg.file):
        return "destination escapes allocation directory"
    joined = posixpath.normpath(posixpath.join("task/local", cfg.file))
    if joined != "task" and not joined.startswith("task/"):
        return "destination escapes allocation directory"
    return ""


# ---- cron arithmetic ---------------------------------------------------------------------


def _croniter_args(spec: str) -> tuple[str, bool]:
    """Nomad's cronexpr field layout in croniter's terms: (expression, seconds first)."""
    text = spec.strip()
    if text.startswith("@"):
        return text, False
    fields = text.split()
    if len(fields) == 6:  # minute .. day-of-week, year: cronexpr prepends a 0 seconds field
        return " ".join(["0", *fields]), True
    if len(fields) == 7:
        return text, True
    return text, False


def _cron_problem(spec: str) -> str:
    from croniter import croniter  # type: ignore[import-untyped,unused-ignore]

    expr, seconds_first = _croniter_args(spec)
    if len(expr.split()) not in (1, 5, 7):
        return "expected 5, 6 or 7 fields"
    try:
        croniter(expr, second_at_beginning=seconds_first)
    except Exception as err:  # user input: any failure of croniter's parser means invalid
        return (str(err) or type(err).__name__)[:_MAX_PROBLEM]
    return ""


def next_launch(cfg: PeriodicConfig, after_ns: int) -> int | None:
    """The first launch strictly after ``after_ns`` (unix ns) in the job's time zone, unix ns;
    None when no spec has one (a past year) or a spec cannot be evaluated. With several
    ``crons`` the earliest wins (Nomad's PeriodicConfig.Next)."""
    from croniter import croniter  # type: ignore[import-untyped,unused-ignore]

    try:
        zone = _zone(cfg.time_zone)
    except ValueError:
        return None
    start = datetime.datetime.fromtimestamp(after_ns / _NS, tz=zone)
    best: int | None = None
    for spec in (cfg.spec,) if cfg.spec else cfg.specs:
        expr, seconds_first = _croniter_args(spec)
        try:
            it = croniter(expr, start, second_at_beginning=seconds_first)
            nxt = it.get_next(datetime.datetime)
        except Exception:  # also "failed to find next date"; validation refused bad specs already
            continue
        ns = int(nxt.timestamp()) * _NS
        if ns <= after_ns:  # croniter rounds to seconds; keep "strictly after"
            continue
        if best is None or ns < best:
            best = ns
    return best


def periodic_child_id(parent_id: str, launch_ns: int) -> str:
    """``<parent>/periodic-<unix seconds>`` (Nomad's derivedJobID)."""
    return f"{parent_id}{PERIODIC_LAUNCH_SUFFIX}{launch_ns // _NS}"


def launch_time_of(child_id: str) -> int | None:
    """The launch time (unix ns) encoded in a periodic child's ID, None if it has none."""
    head, sep, tail = child_id.rpartition(PERIODIC_LAUNCH_SUFFIX)
    if not sep or not head or not tail.isdigit():
        return None
    return int(tail) * _NS


def meta_problem(required: Sequence[str], optional: Sequence[str], meta: dict[str, str]) -> str:
    """Nomad's validateDispatchRequest meta checks ("" when the meta is acceptable)."""
    allowed = set(required) | set(optional)
    unpermitted = sorted(k for k in meta if k not in allowed)
    if unpermitted:
        return f"Dispatch request included unpermitted metadata keys: {unpermitted}"
    missing = sorted(k for k in required if k not in meta)
    if missing:
        return f"Dispatch did not provide required meta keys: {missing}"
    return ""

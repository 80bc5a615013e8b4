"""Reading a job file for the CLI (``job run``, ``job validate``, ``job plan``): the file (``-``:
stdin) is read here; turning it into API JSON is :mod:`nomadd.helper.jobspec`, which the agent's
``/v1/jobs/parse`` shares."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nomadd.helper.jobspec import HCL_MISSING, JOB_SCHEMA, JobFileError, parse_duration_ns, parse_job_text

__all__ = ["HCL_MISSING", "JOB_SCHEMA", "JobFileError", "load_job_file", "parse_duration_ns", "read_text"]


def read_text(path: str, what: str = "job file") -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as err:
        raise JobFileError(f"error reading {what} {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise JobFileError(f"error reading {what} {path}: not UTF-8 text") from None


def load_job_file(
    path: str, var_file: str = "", variables: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Read ``path`` (``-`` = stdin): JSON when it looks like JSON, else HCL."""
    return parse_job_text(read_text(path), path, var_file, variables)

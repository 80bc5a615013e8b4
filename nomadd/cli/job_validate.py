"""``nomadd job validate [-var k=v] [-var-file f] <path>`` (Nomad's command/job_validate.go).

Reads the job file as ``job run`` does (unknown keys are errors), then asks the agent to check it
(``PUT /v1/validate/job``: the fields, and that its namespace and node pool exist). Prints
``Job validation successful`` (exit 0) or ``Job validation errors:`` and each error (exit 1).
"""

from __future__ import annotations

from nomadd.api.jobs import Jobs
from nomadd.cli import meta
from nomadd.cli.job_file import JobFileError, load_job_file, read_text
from nomadd.helper.flags import FlagSet

__all__ = ["job_variables", "run", "variable_flags"]

USAGE = "nomadd job validate [options] <path>"


def variable_flags(fs: FlagSet) -> None:
    fs.strings("var", "A variable of the job specification, as key=value (repeatable).")
    fs.strings("var-file", "An HCL file of variable values (repeatable).")


def _strs(value: object) -> list[str]:
    return (
        [str(v) for v in value]
        if isinstance(value, list | tuple)
        else ([] if value is None else [str(value)])
    )


def job_variables(opts: dict[str, object]) -> tuple[str, dict[str, str]]:
    """The ``-var-file`` contents (joined) and ``-var`` pairs of ``opts``."""
    files = "\n".join(read_text(str(p), "variable file") for p in _strs(opts.get("var-file")))
    pairs: dict[str, str] = {}
    for item in _strs(opts.get("var")):
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise JobFileError(f"-var {item!r}: expected key=value")
        pairs[key] = value
    return files, pairs


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job validate")
    variable_flags(fs)
    parsed = meta.parse_one(fs, args, USAGE, "<path>")
    if parsed is None:
        return 1
    opts, arg = parsed
    try:
        var_file, variables = job_variables(opts)
        job = load_job_file(arg, var_file, variables)
    except JobFileError as err:
        return meta.fail(f"Error getting job struct: Error parsing job file from {arg}:\n{err}")
    try:
        reply = Jobs(meta.api_client(opts)).validate(job)
    except meta.APIError as err:
        return meta.fail(f"Error validating job: {err}")
    errors = reply.get("ValidationErrors") or []
    if errors:
        return meta.fail("Job validation errors:\n" + "\n".join(f"  * {e}" for e in errors))
    if reply.get("Warnings"):
        print(f"Job Warnings:\n{reply['Warnings']}\n")
    print("Job validation successful")
    return 0

"""``nomadd job inspect [-version N] <job>`` (Nomad's command/job_inspect.go): the job as the
servers hold it, as ``{"Job": {...}}`` JSON (what ``job run`` takes back)."""

from __future__ import annotations

from nomadd.api.jobs import Jobs
from nomadd.cli import meta

__all__ = ["run"]

USAGE = "nomadd job inspect [options] <job>"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job inspect")
    fs.string("version", "Display the job at the given job version.")
    parsed = meta.parse_one(fs, args, USAGE, "<job>")
    if parsed is None:
        return 1
    opts, job_id = parsed
    jobs = Jobs(meta.api_client(opts))
    try:
        if "version" in opts:
            try:
                want = int(str(opts["version"]))
            except ValueError:
                return meta.fail(f"Error parsing version value {opts['version']!r}")
            versions, _ = jobs.versions(job_id)
            found = [v for v in versions if v.get("Version") == want]
            if not found:
                return meta.fail(f'job "{job_id}" at version {want} not found')
            job = found[0]
        else:
            job, _ = jobs.info(job_id)
    except meta.APIError as err:
        if err.status == 404:
            return meta.fail(f'No job(s) with prefix or id "{job_id}" found')
        return meta.fail(f"Error inspecting job: {err}")
    meta.print_json({"Job": job})
    return 0

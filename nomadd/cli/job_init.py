"""``nomadd job init [-short] [-json] [<filename>]`` (Nomad's command/job_init.go).

Writes an example job to ``example.nomad.hcl`` (``-json``: ``example.nomad.json``, API JSON) and
refuses to overwrite a file. The example runs on any nomadd client (``raw_exec``, a shell loop),
so ``job init && job run example.nomad.hcl`` places it.
"""

from __future__ import annotations

import json
from pathlib import Path

from nomadd.cli import meta
from nomadd.helper.jobspec import parse_hcl

__all__ = ["EXAMPLE", "EXAMPLE_SHORT", "run"]

USAGE = "nomadd job init [options] [<filename>]"

EXAMPLE_SHORT = """job "example" {
  datacenters = ["*"]

  group "web" {
    count = 1

    task "server" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do date; sleep 10; done"]
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"""

EXAMPLE = """# There can only be a single job definition per file. This job is named
# "example" so it will create a job with the ID and Name "example".

# The "job" block is the top-most configuration option in the job
# specification. A job is a declarative specification of tasks that nomadd
# should run. Jobs have a globally unique name, one or many task groups, which
# are themselves collections of one or many tasks.
job "example" {
  # The "datacenters" parameter lists the datacenters the job may be placed
  # in; "*" means every datacenter.
  datacenters = ["*"]

  # The "type" parameter controls the type of job, which impacts the scheduler's
  # decision on placement: "service", "batch" or "system".
  type = "service"

  # The "node_pool" parameter limits the job to the nodes of one node pool;
  # "all" means every node.
  # node_pool = "default"

  # The "update" block specifies how the job is changed when it is updated.
  update {
    max_parallel = 1
    min_healthy_time = "10s"
    healthy_deadline = "3m"
  }

  # The "group" block defines a series of tasks that should be co-located on
  # the same client (host).
  group "web" {
    # The "count" parameter specifies the number of the task groups that should
    # be running under this group. This value must be non-negative.
    count = 1

    # The "restart" block configures a group's behavior on task failure.
    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }

    # The "ephemeral_disk" block describes the scratch disk of the group's
    # allocations (in MB).
    ephemeral_disk {
      size = 300
    }

    # The "task" block creates an individual unit of work, such as a process.
    task "server" {
      # The "driver" parameter specifies the task driver that should be used to
      # run the task: "raw_exec", "exec" or "mock".
      driver = "raw_exec"

      # The "config" block specifies the driver configuration, which is passed
      # directly to the driver to start the task.
      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do date; sleep 10; done"]
      }

      # The "resources" block describes the requirements a task needs to
      # execute: CPU in MHz and memory in MB.
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"""


def run(args: list[str]) -> int:
    fs = meta.new_flagset("job init")
    fs.bool("short", "Write a minimal job file without comments.")
    fs.bool("json", "Write the example as API JSON (example.nomad.json).")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) > 1:
        return meta.fail(f"This command takes no arguments or one: <filename>\nUsage: {USAGE}")
    as_json = bool(opts.get("json"))
    name = rest[0] if rest else ("example.nomad.json" if as_json else "example.nomad.hcl")
    path = Path(name)
    if path.exists():
        return meta.fail(f"Job '{name}' already exists")
    text = EXAMPLE_SHORT if opts.get("short") else EXAMPLE
    if as_json:
        text = json.dumps({"Job": parse_hcl(text)}, indent=2) + "\n"
    try:
        path.write_text(text)
    except OSError as err:
        return meta.fail(f"Failed to write '{name}': {err.strerror or err}")
    print(f"Example job file written to {name}")
    return 0

"""helper/jobspec.py: HCL job specifications with comments and variables (what both ``job run``
and ``PUT /v1/jobs/parse`` read)."""

from __future__ import annotations

import pytest

from nomadd.helper.jobspec import JobFileError, parse_hcl, parse_job_text

SPEC = """
# a comment the parser must not see as a key
variable "image" {
  default = "/bin/sleep"
}
variable "count" {
  default = 1
}
variable "dc" {}

job "web" {
  datacenters = [var.dc] // inline
  meta {
    cmd = "run ${var.image} now"
  }
  group "g" {
    count = var.count
    task "t" {
      driver = "raw_exec"
      config {
        command = var.image
        args    = ["${NOMAD_ALLOC_ID}"]
      }
    }
  }
}
"""


def test_variables_from_defaults_files_and_pairs() -> None:
    job = parse_hcl(SPEC, var_file='dc = "dc9"\n', variables={"count": "4"})
    assert job["Datacenters"] == ["dc9"]
    assert job["Meta"] == {"cmd": "run /bin/sleep now"}
    group = job["TaskGroups"][0]
    assert group["Count"] == 4
    assert group["Tasks"][0]["Config"] == {"command": "/bin/sleep", "args": ["${NOMAD_ALLOC_ID}"]}


@pytest.mark.parametrize(
    ("var_file", "pairs", "message"),
    [
        ("", {}, 'Unset variable "dc"'),
        ('dc = "x"', {"nope": "1"}, 'A variable named "nope" was assigned a value, but not declared'),
        ('dc = "x"', {"count": "many"}, 'Invalid value for variable "count"'),
        ("dc = ", {}, "failed to parse variables"),
    ],
)
def test_bad_variables_are_named(var_file: str, pairs: dict[str, str], message: str) -> None:
    with pytest.raises(JobFileError, match=message):
        parse_hcl(SPEC, var_file=var_file, variables=pairs)


def test_an_undeclared_reference_is_an_error() -> None:
    with pytest.raises(JobFileError, match='There is no variable named "missing"'):
        parse_hcl('job "x" {\n  datacenters = ["${var.missing}"]\n}\n')


def test_comments_everywhere_are_ignored() -> None:
    text = '# top\njob "x" { # after brace\n  # inside\n  type = "batch" # trailing\n}\n'
    assert parse_job_text(text) == {"ID": "x", "Type": "batch"}


def test_typed_variables_and_locals() -> None:
    text = (
        'variable "n" {\n  type = number\n}\nvariable "on" {\n  type = bool\n  default = false\n}\n'
        'locals {\n  name = "web-${var.n}"\n}\n'
        'job "x" {\n  priority = var.n\n  all_at_once = var.on\n  meta {\n    n = local.name\n  }\n}\n'
    )
    job = parse_hcl(text, variables={"n": "70", "on": "true"})
    assert job["Priority"] == 70 and job["AllAtOnce"] is True and job["Meta"] == {"n": "web-70"}
    with pytest.raises(JobFileError, match='Invalid value for variable "on"'):
        parse_hcl(text, variables={"n": "1", "on": "yes"})
    with pytest.raises(JobFileError, match='There is no local value named "other"'):
        parse_hcl('job "x" {\n  meta {\n    a = "${local.other}"\n  }\n}\n')

"""Job files: API JSON (strict keys) and HCL (python-hcl2), both to the API JSON job."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from nomadd.cli import job_file
from nomadd.cli.job_file import JOB_SCHEMA, JobFileError, load_job_file, parse_duration_ns
from nomadd.structs.codec import _plan, from_api
from nomadd.structs.job import Job

HCL = """
job "web" {
  datacenters = ["dc1"]
  type = "service"
  meta { team = "a" }
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  group "g" {
    count = 3
    restart {
      attempts = 2
      interval = "30m"
      delay    = "15s"
      mode     = "fail"
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo hi; sleep 1000"]
      }
      env { FOO = "bar" }
      resources {
        cpu    = 100
        memory = 64
      }
      kill_timeout = "3s"
    }
  }
}
"""


def _schema_of(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fp in _plan(cls):
        kind = fp.kind.inner if fp.kind.tag == "opt" else fp.kind
        assert kind is not None
        if kind.tag == "struct":
            out[fp.api] = _schema_of(kind.typ)  # type: ignore[arg-type]
        elif kind.tag == "tuple" and kind.inner is not None and kind.inner.tag == "struct":
            out[fp.api] = [_schema_of(kind.inner.typ)]  # type: ignore[arg-type]
        else:
            out[fp.api] = None
    return out


def test_schema_matches_structs() -> None:
    assert _schema_of(Job) == JOB_SCHEMA


def test_hcl_to_api(tmp_path: Path) -> None:
    path = tmp_path / "web.nomad.hcl"
    path.write_text(HCL)
    job = load_job_file(str(path))
    assert job["ID"] == "web" and job["Datacenters"] == ["dc1"] and job["Meta"] == {"team": "a"}
    assert job["Constraints"] == [{"LTarget": "${attr.kernel.name}", "RTarget": "linux"}]
    group = job["TaskGroups"][0]
    assert group["Count"] == 3
    assert group["RestartPolicy"] == {
        "Attempts": 2,
        "Interval": 1800 * 10**9,
        "Delay": 15 * 10**9,
        "Mode": "fail",
    }
    task = group["Tasks"][0]
    assert task["Config"] == {"command": "/bin/sh", "args": ["-c", "echo hi; sleep 1000"]}
    assert task["Resources"] == {"CPU": 100, "MemoryMB": 64} and task["KillTimeout"] == 3 * 10**9
    parsed = from_api(Job, job).canonicalize()
    parsed.validate(["raw_exec"])


def test_hcl_unknown_key_names_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.hcl"
    path.write_text(HCL.replace('driver = "raw_exec"', 'drivr = "raw_exec"'))
    with pytest.raises(JobFileError, match=r"job\.group\[0\]\.task\[0\]\.drivr: unknown key"):
        load_job_file(str(path))


def test_json_unknown_key_names_it(tmp_path: Path) -> None:
    doc = {"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Drvier": "raw_exec"}]}]}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(JobFileError, match=r"Job\.TaskGroups\[0\]\.Tasks\[0\]\.Drvier: unknown key"):
        load_job_file(str(path))


def test_json_free_form_maps_are_not_checked(tmp_path: Path) -> None:
    doc = {
        "Job": {
            "ID": "x",
            "Meta": {"anything": "1"},
            "TaskGroups": [{"Tasks": [{"Config": {"whatever": 1}}]}],
        }
    }
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(doc))
    assert load_job_file(str(path))["Meta"] == {"anything": "1"}


def test_hcl_without_hcl2_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_hcl2(name: str, *args: Any, **kw: Any) -> Any:
        if name == "hcl2":
            raise ImportError("no hcl2")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_hcl2)
    path = tmp_path / "web.hcl"
    path.write_text(HCL)
    with pytest.raises(JobFileError, match=r"pip install python-hcl2"):
        load_job_file(str(path))
    assert job_file.HCL_MISSING


@pytest.mark.parametrize(
    ("text", "ns"),
    [("15s", 15 * 10**9), ("1h30m", 5400 * 10**9), ("500ms", 5 * 10**8), ("0", 0), ("1.5s", 15 * 10**8)],
)
def test_durations(text: str, ns: int) -> None:
    assert parse_duration_ns(text, "x") == ns


def test_bad_duration() -> None:
    with pytest.raises(JobFileError, match="x: invalid duration"):
        parse_duration_ns("5 minutes", "x")

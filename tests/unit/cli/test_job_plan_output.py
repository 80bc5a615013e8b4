"""``job plan``'s exit codes (Nomad's getExitCode) and its diff rendering."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from nomadd.cli.job_plan import exit_code, format_job_diff
from nomadd.scheduler.testing import mock_job
from nomadd.structs.job_diff import annotate, job_diff


def _resp(kind: str, **counts: int) -> dict[str, Any]:
    return {"Diff": {"Type": kind}, "Annotations": {"DesiredTGUpdates": {"g": counts}}}


@pytest.mark.parametrize(
    ("resp", "code"),
    [
        (_resp("None", Place=3), 0),  # no diff: nothing to do, whatever the counts
        (_resp("Edited", Ignore=3), 0),
        (_resp("Edited", InPlaceUpdate=3), 0),
        (_resp("Edited", Place=1), 1),
        (_resp("Edited", Stop=1), 1),
        (_resp("Edited", DestructiveUpdate=2), 1),
        (_resp("Edited", Migrate=1), 1),
        (_resp("Edited", Canary=1), 1),
        (_resp("Added", Place=3), 1),
    ],
)
def test_exit_codes_are_nomads(resp: dict[str, Any], code: int) -> None:
    assert exit_code(resp) == code


def test_diff_rendering_matches_nomads_layout() -> None:
    old = mock_job(count=3)
    tg = old.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], config={"command": "/bin/sleep", "args": ["5"]})
    new = dataclasses.replace(old, task_groups=(dataclasses.replace(tg, count=4, tasks=(task,)),))
    diff = annotate(job_diff(old, new), {"web": {"Place": 1, "DestructiveUpdate": 3}})
    assert format_job_diff(diff).strip().splitlines() == [
        '+/- Job: "web"',
        '+/- Task Group: "web" (1 create, 3 create/destroy update)',
        '  +/- Count: "3" => "4" (forces create)',
        '  +/- Task: "web" (forces create/destroy update)',
        "    +/- Config {",
        '      +/- args[0]: "1000" => "5"',
        "        }",
    ]

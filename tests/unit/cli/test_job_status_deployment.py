"""``job status JOB`` ends with Nomad's ``Latest Deployment`` section when the job has one."""

from __future__ import annotations

from nomadd.cli.job_status import format_latest_deployment

DEPLOYMENT = {
    "ID": "0123456789abcdef",
    "Status": "running",
    "StatusDescription": "Deployment is running",
    "TaskGroups": {
        "web": {
            "DesiredTotal": 3,
            "PlacedAllocs": 2,
            "HealthyAllocs": 1,
            "UnhealthyAllocs": 0,
            "RequireProgressBy": "2026-12-03T17:20:00Z",
        }
    },
}


def test_latest_deployment_section_as_nomads() -> None:
    lines = format_latest_deployment(DEPLOYMENT).splitlines()
    assert lines[:3] == [
        "ID          = 01234567",
        "Status      = running",
        "Description = Deployment is running",
    ]
    assert lines[3:5] == ["", "Deployed"]
    assert lines[5].split() == [
        "Task",
        "Group",
        "Desired",
        "Placed",
        "Healthy",
        "Unhealthy",
        "Progress",
        "Deadline",
    ]
    assert lines[6].split() == ["web", "3", "2", "1", "0", "2026-12-03T17:20:00Z"]
    assert format_latest_deployment(DEPLOYMENT, verbose=True).startswith("ID          = 0123456789abcdef")


def test_no_groups_no_table() -> None:
    out = format_latest_deployment({"ID": "d1", "Status": "successful", "StatusDescription": "done"})
    assert "Deployed" not in out and out.endswith("Description = done")

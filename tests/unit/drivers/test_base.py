from __future__ import annotations

import json
import signal

import pytest

from nomadd.drivers import DRIVERS, base
from nomadd.drivers.base import ExitResult, TaskHandle, clean_env, parse_signal
from nomadd.structs.errors import DriverError


def test_exports() -> None:
    for name in base.__all__:
        assert hasattr(base, name), name
    assert set(DRIVERS) == {"raw_exec", "exec", "mock", "docker"}
    for name, cls in DRIVERS.items():
        assert issubclass(cls, base.Driver)
        assert cls.name == name


def test_handle_round_trips_through_json() -> None:
    h = TaskHandle(
        driver="raw_exec",
        alloc_id="a",
        task_name="t",
        pid=123,
        start_time=456,
        started_at=1.5,
        driver_state={"executor_pid": 9, "cgroups": ["/x"]},
    )
    again = TaskHandle.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again == h


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"driver": "x"},
        {"version": 99, "driver": "x"},
        {
            **dict.fromkeys(["driver", "alloc_id", "task_name"], "x"),
            "pid": "nan",
            "start_time": 1,
            "started_at": 1,
        },
    ],
)
def test_bad_handle_raises_driver_error(data: dict[str, object]) -> None:
    with pytest.raises(DriverError):
        TaskHandle.from_dict(data)


def test_parse_signal() -> None:
    assert parse_signal("SIGTERM") is signal.SIGTERM
    assert parse_signal("term") is signal.SIGTERM
    assert parse_signal("9") is signal.SIGKILL
    assert parse_signal(2) is signal.SIGINT
    with pytest.raises(DriverError):
        parse_signal("SIGNOPE")
    with pytest.raises(DriverError):
        parse_signal(999)


def test_clean_env_strips_systemd_variables() -> None:
    env = {
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "1000",
        "WATCHDOG_PID": "1",
        "LISTEN_FDS": "1",
        "NOMAD_ALLOC_ID": "a",
        "PATH": "/bin",
    }
    assert clean_env(env) == {"NOMAD_ALLOC_ID": "a", "PATH": "/bin"}


def test_exit_result_successful() -> None:
    assert ExitResult(exit_code=0).successful
    assert not ExitResult(exit_code=1).successful
    assert not ExitResult(exit_code=0, signal=9).successful

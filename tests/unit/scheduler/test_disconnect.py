from __future__ import annotations

import dataclasses

import pytest

from nomadd.helper.jobspec import parse_job_text
from nomadd.scheduler.disconnect import ALLOC_RECONNECTED, node_disconnect_window_ns
from nomadd.scheduler.reconcile import Reconciled, reconcile
from nomadd.scheduler.testing import mock_job, mock_node
from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus
from nomadd.structs.codec import from_api
from nomadd.structs.disconnect import DisconnectStrategy
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.nomad_api import check_supported
from nomadd.structs.timeutil import NS_PER_S
from tests.unit.scheduler.test_reconcile import alloc as base_alloc

NOW_S = 1_700_000_000
NOW = NOW_S * NS_PER_S
WINDOW = 30 * NS_PER_S
RUNNING = AllocClientStatus.RUNNING
UNKNOWN = AllocClientStatus.UNKNOWN


def job_with(count: int = 1, **group: object) -> Job:
    job = mock_job(count=count)
    tg = dataclasses.replace(job.task_groups[0], **group)  # type: ignore[arg-type]
    return dataclasses.replace(job, task_groups=(tg,))


def alloc(job: Job, index: int, node: str = "n1", **kw: object) -> Allocation:
    """test_reconcile's allocation, running."""
    return base_alloc(job, index, node, **{"client_status": RUNNING, **kw})


def nodes(n1: NodeStatus, since_s: int = NOW_S - 5) -> dict[str, Node]:
    return {
        "n1": mock_node("n1", status=n1, status_updated_at=since_s),
        "n2": mock_node("n2"),
    }


def run(job: Job, allocs: list[Allocation], n1: NodeStatus, since_s: int = NOW_S - 5) -> Reconciled:
    return reconcile(job, allocs, nodes(n1, since_s).get, NOW, batch=False)


def test_disconnected_within_window_is_unknown_and_replaced() -> None:
    job = job_with(max_client_disconnect=WINDOW)
    out = run(job, [alloc(job, 0)], NodeStatus.DISCONNECTED)
    assert out.stop == []  # not stopped: it keeps running on the client
    [(marked, due)] = out.followups
    assert marked.id == "a0" and marked.client_status == UNKNOWN
    assert due == (NOW_S - 5) * NS_PER_S + WINDOW  # the window runs from the disconnect
    assert [(p.name, p.previous.id if p.previous else "") for p in out.place] == [("web.web[0]", "a0")]
    assert out.new == []


def test_without_a_window_a_disconnected_node_loses_its_allocs() -> None:
    job = job_with()
    out = run(job, [alloc(job, 0)], NodeStatus.DISCONNECTED)
    assert [(s.alloc.id, s.client_status) for s in out.stop] == [("a0", AllocClientStatus.LOST)]
    assert out.followups == []


def test_replace_false_keeps_the_name_without_a_replacement() -> None:
    job = job_with(disconnect=DisconnectStrategy(lost_after=WINDOW, replace=False))
    out = run(job, [alloc(job, 0)], NodeStatus.DISCONNECTED)
    assert [a.client_status for a, _ in out.followups] == [UNKNOWN]
    assert out.place == [] and out.new == [] and out.stop == []


def test_unknown_with_replacement_is_left_alone_inside_window() -> None:
    job = job_with(max_client_disconnect=WINDOW)
    orig = alloc(job, 0, client_status=UNKNOWN, next_allocation="a9")
    repl = alloc(job, 9, node="n2", name="web.web[0]", previous_allocation="a0")
    out = run(job, [orig, repl], NodeStatus.DISCONNECTED)
    assert out.stop == [] and out.place == [] and out.new == [] and out.followups == []


def test_unknown_past_window_is_lost_without_second_replacement() -> None:
    job = job_with(max_client_disconnect=WINDOW)
    orig = alloc(job, 0, client_status=UNKNOWN, next_allocation="a9")
    repl = alloc(job, 9, node="n2", name="web.web[0]", previous_allocation="a0")
    out = run(job, [orig, repl], NodeStatus.DISCONNECTED, since_s=NOW_S - 31)
    assert [(s.alloc.id, s.client_status) for s in out.stop] == [("a0", AllocClientStatus.LOST)]
    assert out.place == [] and out.new == []


def test_unknown_on_a_down_node_is_lost() -> None:
    job = job_with(max_client_disconnect=WINDOW)
    orig = alloc(job, 0, client_status=UNKNOWN, next_allocation="a9")
    repl = alloc(job, 9, node="n2", name="web.web[0]", previous_allocation="a0")
    out = run(job, [orig, repl], NodeStatus.DOWN)
    assert [(s.alloc.id, s.client_status) for s in out.stop] == [("a0", AllocClientStatus.LOST)]
    assert out.place == [] and out.new == []


def test_reconnected_but_not_reported_waits() -> None:
    job = job_with(max_client_disconnect=WINDOW)
    orig = alloc(job, 0, client_status=UNKNOWN, next_allocation="a9")
    repl = alloc(job, 9, node="n2", name="web.web[0]", previous_allocation="a0")
    out = run(job, [orig, repl], NodeStatus.READY)
    assert out.stop == [] and out.place == [] and out.new == []


@pytest.mark.parametrize("rule", ["keep_original", "best_score", "longest_running"])
def test_reconnect_keeps_original_and_stops_replacement(rule: str) -> None:
    job = job_with(disconnect=DisconnectStrategy(lost_after=WINDOW, reconcile=rule))
    orig = alloc(job, 0, next_allocation="a9")  # reported running again
    repl = alloc(job, 9, node="n2", name="web.web[0]", previous_allocation="a0")
    out = run(job, [orig, repl], NodeStatus.READY)
    assert [(s.alloc.id, s.description) for s in out.stop] == [("a9", ALLOC_RECONNECTED)]
    assert out.place == [] and out.new == []
    # once the replacement is stopped, the original simply lives on
    stopped = dataclasses.replace(repl, desired_status=AllocDesiredStatus.STOP)
    again = run(job, [orig, stopped], NodeStatus.READY)
    assert again.stop == [] and again.place == [] and again.new == []


def test_reconnect_keep_replacement_stops_original() -> None:
    job = job_with(disconnect=DisconnectStrategy(lost_after=WINDOW, reconcile="keep_replacement"))
    orig = alloc(job, 0, next_allocation="a9")
    repl = alloc(job, 9, node="n2", name="web.web[0]", previous_allocation="a0")
    out = run(job, [orig, repl], NodeStatus.READY)
    assert [(s.alloc.id, s.description) for s in out.stop] == [("a0", ALLOC_RECONNECTED)]
    assert out.place == [] and out.new == []


def test_node_window_is_the_longest_lost_after() -> None:
    short = job_with(max_client_disconnect=WINDOW)
    long = dataclasses.replace(job_with(disconnect=DisconnectStrategy(lost_after=2 * WINDOW)), id="other")
    plain = dataclasses.replace(job_with(), id="plain")
    allocs = [alloc(short, 0), dataclasses.replace(alloc(long, 1), job_id="other"), alloc(plain, 2)]
    assert node_disconnect_window_ns(allocs) == 2 * WINDOW
    assert node_disconnect_window_ns([alloc(plain, 2)]) == 0
    stopped = dataclasses.replace(alloc(long, 1), desired_status=AllocDesiredStatus.STOP)
    assert node_disconnect_window_ns([stopped]) == 0


GROUP = 'job "x" {\n group "web" {\n %s\n task "t" {\n driver = "raw_exec"\n config { command = "sleep" }\n }\n }\n}\n'


def parsed(body: str) -> Job:
    data = parse_job_text(GROUP % body)
    check_supported(Job, data, "Job")
    return from_api(Job, data, strict=True)


def test_hcl_and_api_accept_disconnect_blocks() -> None:
    legacy = parsed('max_client_disconnect = "30s"')
    assert legacy.task_groups[0].max_client_disconnect == WINDOW
    block = parsed('disconnect {\n lost_after = "1m"\n replace = false\n reconcile = "keep_original"\n }')
    assert block.task_groups[0].disconnect == DisconnectStrategy(
        lost_after=60 * NS_PER_S, replace=False, reconcile="keep_original"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('disconnect {\n reconcile = "newest"\n }', "Disconnect.Reconcile: invalid value"),
        ('disconnect {\n lost_after = "-1s"\n }', "Disconnect.LostAfter: must be a positive value"),
        ('max_client_disconnect = "-5s"', "MaxClientDisconnect: must be a positive value"),
        (
            'max_client_disconnect = "5s"\n disconnect {\n lost_after = "5s"\n }',
            "using both lost_after and max_client_disconnect",
        ),
        ('disconnect {\n stop_on_client_after = "5s"\n }', "StopOnClientAfter: not supported"),
    ],
)
def test_bad_disconnect_blocks_are_refused(body: str, message: str) -> None:
    job = parsed(body).canonicalize()
    with pytest.raises(ValidationError, match=message):
        job.validate()

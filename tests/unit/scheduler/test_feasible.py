from __future__ import annotations

import dataclasses

import pytest

from nomadd.scheduler.feasible import (
    GroupChecker,
    check_constraint,
    datacenter_matches,
    group_constraints,
    ready_nodes_in,
    resolve_target,
)
from nomadd.scheduler.testing import mock_job, mock_node
from nomadd.structs.constraint import Constraint
from nomadd.structs.node import DrainStrategy, DriverInfo, NodeEligibility, NodeStatus


@pytest.mark.parametrize(
    ("patterns", "dc", "ok"),
    [
        (("dc1",), "dc1", True),
        (("dc1",), "dc2", False),
        (("*",), "anything", True),
        (("us-*",), "us-east-1", True),
        (("us-*",), "eu-west-1", False),
        (("dc?",), "dc7", True),
        (("a", "b"), "b", True),
        ((), "dc1", False),
    ],
)
def test_datacenter_globs(patterns: tuple[str, ...], dc: str, ok: bool) -> None:
    assert datacenter_matches(patterns, dc) is ok


def test_resolve_target() -> None:
    node = mock_node("n-1", meta={"rack": "r1"}, node_class="big")
    assert resolve_target("${attr.kernel.name}", node) == "linux"
    assert resolve_target("${meta.rack}", node) == "r1"
    assert resolve_target("${node.unique.id}", node) == "n-1"
    assert resolve_target("${node.datacenter}", node) == "dc1"
    assert resolve_target("${node.class}", node) == "big"
    assert resolve_target("${node.pool}", node) == "default"
    assert resolve_target("${attr.missing}", node) is None
    assert resolve_target("${nonsense}", node) is None
    assert resolve_target("literal", node) == "literal"


NODE = mock_node(
    "n-1",
    attributes={
        "kernel.name": "linux",
        "cpu.numcores": "8",
        "nomad.version": "1.6.2",
        "tags": "ssd, gpu ,fast",
    },
)


@pytest.mark.parametrize(
    ("l_target", "operand", "r_target", "ok"),
    [
        ("${attr.kernel.name}", "=", "linux", True),
        ("${attr.kernel.name}", "==", "windows", False),
        ("${attr.kernel.name}", "is", "linux", True),
        ("${attr.kernel.name}", "!=", "windows", True),
        ("${attr.kernel.name}", "not", "linux", False),
        ("${attr.missing}", "!=", "x", True),
        ("${attr.missing}", "=", "x", False),
        ("${attr.cpu.numcores}", ">", "4", True),
        ("${attr.cpu.numcores}", ">=", "8", True),
        ("${attr.cpu.numcores}", "<", "10", True),  # numeric, not lexical
        ("${attr.cpu.numcores}", "<=", "7", False),
        ("${attr.kernel.name}", "<", "mac", True),  # lexical when not numbers
        ("${attr.missing}", ">", "1", False),
        ("${attr.kernel.name}", "regexp", "^lin", True),
        ("${attr.kernel.name}", "regexp", "^win", False),
        ("${attr.kernel.name}", "regexp", "(", False),
        ("${attr.nomad.version}", "version", ">= 1.6, < 2.0", True),
        ("${attr.nomad.version}", "version", "> 1.6.2", False),
        ("${attr.nomad.version}", "semver", "~> 1.6.0", True),
        ("${attr.nomad.version}", "version", "~> 1.5.0", False),
        ("${attr.nomad.version}", "version", "= 1.6.2", True),
        ("${attr.tags}", "set_contains", "gpu,ssd", True),
        ("${attr.tags}", "set_contains_all", "gpu,nvme", False),
        ("${attr.tags}", "set_contains_any", "nvme,fast", True),
        ("${attr.tags}", "set_contains_any", "nvme", False),
        ("${attr.kernel.name}", "is_set", "", True),
        ("${attr.missing}", "is_set", "", False),
        ("${attr.missing}", "is_not_set", "", True),
        ("", "distinct_hosts", "", True),  # checked against placements, not nodes
        ("${attr.kernel.name}", "bogus", "x", False),
    ],
)
def test_check_constraint(l_target: str, operand: str, r_target: str, ok: bool) -> None:
    c = Constraint(l_target=l_target, operand=operand, r_target=r_target)
    assert check_constraint(c, NODE) is ok


def test_group_constraints_merge_job_group_task() -> None:
    job = mock_job(constraints=(Constraint(l_target="${attr.a}", r_target="1"),))
    tg = job.task_groups[0]
    task = dataclasses.replace(tg.tasks[0], constraints=(Constraint(l_target="${attr.c}", r_target="3"),))
    tg = dataclasses.replace(tg, constraints=(Constraint(l_target="${attr.b}", r_target="2"),), tasks=(task,))
    assert [c.l_target for c in group_constraints(job, tg)] == [
        "${attr.a}",
        "${attr.b}",
        "${attr.c}",
    ]


def test_drivers_must_be_detected_and_healthy() -> None:
    job = mock_job()
    checker = GroupChecker(job, job.task_groups[0])
    assert checker.feasible(mock_node("a"))
    unhealthy = mock_node("b", drivers={"raw_exec": DriverInfo(detected=True, healthy=False)})
    assert not checker.feasible(unhealthy)
    missing = mock_node("c", drivers={}, attributes={})
    assert not checker.feasible(missing)
    legacy = mock_node("d", drivers={}, attributes={"driver.raw_exec": "1"})
    assert checker.feasible(legacy)
    assert checker.constraint_filtered == {"missing drivers: raw_exec": 2}


def test_checker_caches_by_computed_class() -> None:
    job = mock_job(constraints=(Constraint(l_target="${attr.kernel.name}", r_target="linux"),))
    checker = GroupChecker(job, job.task_groups[0])
    a = mock_node("a")
    b = mock_node("b")
    assert a.computed_class == b.computed_class
    assert checker.feasible(a)
    assert checker.feasible(b)
    assert checker.class_eligibility() == {a.computed_class: True}
    assert not checker.escaped


def test_unique_constraints_escape_class_cache() -> None:
    job = mock_job(constraints=(Constraint(l_target="${node.unique.id}", r_target="b", operand="!="),))
    checker = GroupChecker(job, job.task_groups[0])
    assert checker.escaped
    assert checker.feasible(mock_node("a"))
    assert not checker.feasible(mock_node("b"))  # same class as "a", but a different answer
    assert checker.class_eligibility() == {}


def test_ready_nodes_in_filters_status_eligibility_drain_pool_dc() -> None:
    job = mock_job(datacenters=("dc1", "eu-*"))
    nodes = [
        mock_node("ok1"),
        mock_node("ok2", datacenter="eu-west"),
        mock_node("down", status=NodeStatus.DOWN),
        mock_node("init", status=NodeStatus.INITIALIZING),
        mock_node("inel", scheduling_eligibility=NodeEligibility.INELIGIBLE),
        mock_node("drain", drain_strategy=DrainStrategy()),
        mock_node("pool", node_pool="gpu"),
        mock_node("dc", datacenter="us-east"),
    ]
    ready, by_dc = ready_nodes_in(job, nodes)
    assert [n.id for n in ready] == ["ok1", "ok2"]
    assert by_dc == {"dc1": 1, "eu-west": 1}
    all_pool = dataclasses.replace(job, node_pool="all")
    assert [n.id for n in ready_nodes_in(all_pool, nodes)[0]] == ["ok1", "ok2", "pool"]

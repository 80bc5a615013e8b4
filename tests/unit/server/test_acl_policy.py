"""docs/acl.md: Nomad's ACL rule language (HCL and JSON) and the compiled ACL's decisions."""

from __future__ import annotations

import pytest

from nomadd.server.acl.acl import MANAGEMENT_ACL, compile_acl
from nomadd.server.acl.policy import parse
from nomadd.structs.errors import ValidationError


def acl(*rules: str):  # type: ignore[no-untyped-def]
    return compile_acl(parse(r) for r in rules)


def test_shorthands_globs_and_deny() -> None:
    a = acl(
        'namespace "default" { policy = "read" }\n'
        'namespace "team-*" { policy = "write" }\n'
        'namespace "team-secret" { policy = "deny" }\n'
        'namespace "ops" { policy = "scale" }'
    )
    assert a.allow_ns_op("default", "read-job") and a.allow_ns_op("default", "list-jobs")
    assert not a.allow_ns_op("default", "submit-job")
    assert a.allow_ns_op("team-a", "submit-job") and a.allow_ns_op("team-a", "alloc-exec")
    assert not a.allow_ns_op("team-a", "alloc-node-exec")  # write does not grant it
    assert not a.allow_ns_op("team-secret", "read-job")  # exact beats glob
    assert a.allow_ns_op("ops", "scale-job") and not a.allow_ns_op("ops", "read-job")
    assert not a.allow_ns_op("other", "read-job")
    assert a.allow_variable_op("default", "any/path", "read") and not a.allow_variable_op(
        "default", "x", "write"
    )
    assert a.allow_ns_any("submit-job") and not acl('namespace "x" { policy = "deny" }').allow_ns_any(
        "read-job"
    )


def test_closest_glob_wins() -> None:
    a = acl('namespace "*" { policy = "read" }\nnamespace "prod-*" { policy = "deny" }')
    assert a.allow_ns_op("dev", "read-job") and not a.allow_ns_op("prod-api", "read-job")


def test_capabilities_variables_levels_merge() -> None:
    a = acl(
        'namespace "default" {\n capabilities = ["submit-job", "read-logs"]\n'
        ' variables { path "app/*" { capabilities = ["read", "list"] }\n path "app/secret" { capabilities = ["deny"] } }\n}\n'
        'node { policy = "read" }\nagent { policy = "write" }\noperator { policy = "read" }',
        'node { policy = "write" }\noperator { policy = "deny" }',
    )
    assert a.allow_ns_op("default", "submit-job") and not a.allow_ns_op("default", "read-job")
    assert a.allow_variable_op("default", "app/db", "read") and not a.allow_variable_op(
        "default", "app/db", "write"
    )
    assert not a.allow_variable_op("default", "app/secret", "read")
    assert not a.allow_variable_op("default", "other", "read")
    assert a.allow_node_write() and a.allow_agent_read() and a.allow_agent_write()
    assert not a.allow_operator_read()  # deny wins across policies


def test_json_rules_equal_hcl() -> None:
    hcl = acl('namespace "default" { policy = "write" }\nnode { policy = "read" }')
    js = acl('{"namespace": {"default": {"policy": "write"}}, "node": {"policy": "read"}}')
    assert hcl == js


def test_management_allows_everything() -> None:
    assert MANAGEMENT_ACL.allow_ns_op("x", "alloc-node-exec") and MANAGEMENT_ACL.allow_operator_write()


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("", "rules are empty"),
        ("namespace {", "invalid HCL"),
        ("{oops", "invalid JSON"),
        ('namespace "d" { capabilities = ["fly"] }', "Invalid namespace capability 'fly'"),
        ('namespace "d" { policy = "root" }', "Invalid namespace policy 'root'"),
        (
            'namespace "d" { variables { path "*" { capabilities = ["exec"] } } }',
            "Invalid variable capability 'exec'",
        ),
        ('namespace "d" { colour = "red" }', "unknown key 'colour'"),
        ('node { policy = "scale" }', "Invalid node policy 'scale'"),
        ('plugin { policy = "write" }', "Invalid plugin policy 'write'"),
        ('host_volume "v" { capabilities = ["fly"] }', "Invalid host volume capability 'fly'"),
        ('sentinel "x" {}', "unknown block 'sentinel'"),
        ('namespace "d" { capabilities = "read-job" }', "capabilities must be a list of strings"),
    ],
)
def test_bad_rules_name_the_problem(rules: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(rules)

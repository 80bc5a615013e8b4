"""Nomad's ACL policy rule language (``acl/policy.go``), in HCL or JSON.

::

    namespace "default" {
      policy       = "read"                 # deny | read | write | scale: shorthand for capabilities
      capabilities = ["submit-job"]          # added to the shorthand's
      variables { path "app/*" { capabilities = ["read", "list"] } }
    }
    namespace "team-*" { policy = "write" } # globs: the closest match wins
    node     { policy = "read" }            # node, agent, operator, quota: deny | read | write
    plugin   { policy = "list" }            # deny | read | list
    host_volume "prod-*" { policy = "write" }

:func:`parse` returns a :class:`Policy` or raises :class:`ValidationError` naming the problem (bad
HCL, an unknown block, policy or capability).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nomadd.structs.errors import ValidationError

__all__ = [
    "NAMESPACE_CAPABILITIES",
    "HostVolumeRule",
    "NamespaceRule",
    "Policy",
    "parse",
]

POLICY_DENY = "deny"
POLICY_READ = "read"
POLICY_WRITE = "write"
POLICY_SCALE = "scale"
POLICY_LIST = "list"

NAMESPACE_CAPABILITIES = frozenset(
    {
        "deny",
        "list-jobs",
        "parse-job",
        "read-job",
        "submit-job",
        "dispatch-job",
        "read-logs",
        "read-fs",
        "alloc-exec",
        "alloc-node-exec",
        "alloc-lifecycle",
        "csi-register-plugin",
        "csi-write-volume",
        "csi-read-volume",
        "csi-list-volume",
        "csi-mount-volume",
        "list-scaling-policies",
        "read-scaling-policy",
        "read-job-scaling",
        "scale-job",
        "sentinel-override",
        "submit-recommendation",
        "host-volume-create",
        "host-volume-register",
        "host-volume-read",
        "host-volume-write",
        "host-volume-delete",
    }
)
VARIABLE_CAPABILITIES = frozenset({"write", "read", "list", "destroy", "deny"})
HOST_VOLUME_CAPABILITIES = frozenset({"deny", "mount-readonly", "mount-readwrite"})

_READ_CAPS = (
    "list-jobs",
    "parse-job",
    "read-job",
    "csi-list-volume",
    "csi-read-volume",
    "read-job-scaling",
    "list-scaling-policies",
    "read-scaling-policy",
    "host-volume-read",
)
_WRITE_CAPS = (
    *_READ_CAPS,
    "scale-job",
    "submit-job",
    "dispatch-job",
    "read-logs",
    "read-fs",
    "alloc-exec",
    "alloc-lifecycle",
    "csi-mount-volume",
    "csi-write-volume",
    "submit-recommendation",
    "host-volume-create",
    "host-volume-write",
)
_SCALE_CAPS = ("list-scaling-policies", "read-scaling-policy", "read-job-scaling", "scale-job")
_NS_SHORTHAND: dict[str, tuple[str, ...]] = {
    POLICY_DENY: ("deny",),
    POLICY_READ: _READ_CAPS,
    POLICY_WRITE: _WRITE_CAPS,
    POLICY_SCALE: _SCALE_CAPS,
}
# The shorthand's variables rule on every path (Nomad's expandNamespacePolicy).
_NS_VARIABLES: dict[str, tuple[str, ...]] = {
    POLICY_DENY: ("deny",),
    POLICY_READ: ("read", "list"),
    POLICY_WRITE: ("write", "read", "list", "destroy"),
}
_LEVEL_POLICIES = frozenset({POLICY_DENY, POLICY_READ, POLICY_WRITE})
_PLUGIN_POLICIES = frozenset({POLICY_DENY, POLICY_READ, POLICY_LIST})
_HOST_VOLUME_SHORTHAND: dict[str, tuple[str, ...]] = {
    POLICY_DENY: ("deny",),
    POLICY_READ: ("mount-readonly",),
    POLICY_WRITE: ("mount-readonly", "mount-readwrite"),
}
_BLOCKS = frozenset({"namespace", "node", "agent", "operator", "quota", "plugin", "host_volume"})


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceRule:
    name: str  # may be a glob
    capabilities: frozenset[str]
    variables: tuple[tuple[str, frozenset[str]], ...] = ()  # (path glob, capabilities)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostVolumeRule:
    name: str
    capabilities: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    namespaces: tuple[NamespaceRule, ...] = ()
    host_volumes: tuple[HostVolumeRule, ...] = ()
    node: str = ""
    agent: str = ""
    operator: str = ""
    quota: str = ""
    plugin: str = ""


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {
            _unquote(k): _unquote(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__", "__inline_comments__")
        }
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def _load(rules: str) -> dict[str, Any]:
    text = rules.strip()
    if not text:
        raise ValidationError("Failed to parse ACL policy: rules are empty")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as err:
            raise ValidationError(f"Failed to parse ACL policy: invalid JSON: {err}") from None
    else:
        import hcl2

        try:
            data = _unquote(hcl2.loads(text))
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValidationError(f"Failed to parse ACL policy: invalid HCL: {first}") from None
    if not isinstance(data, dict):
        raise ValidationError("Failed to parse ACL policy: expected an object of blocks")
    return data


def _bodies(kind: str, value: Any) -> Iterator[dict[str, Any]]:
    """An unlabeled block's bodies: ``{...}`` or ``[{...}, ...]``."""
    for body in value if isinstance(value, list) else [value]:
        if not isinstance(body, dict):
            raise ValidationError(f"Failed to parse ACL policy: {kind} must be a block")
        yield body


def _labeled(kind: str, value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """A labeled block's ``(label, body)`` pairs: ``{label: {...}}`` or a list of those."""
    for item in _bodies(kind, value):
        for label, body in item.items():
            if not isinstance(body, dict):
                raise ValidationError(f"Failed to parse ACL policy: {kind} {label!r} must be a block")
            yield str(label), body


def _str_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"Failed to parse ACL policy: {where}: capabilities must be a list of strings")
    return list(value)


def _check_caps(where: str, caps: list[str], valid: frozenset[str]) -> None:
    for cap in caps:
        if cap not in valid:
            raise ValidationError(f"Invalid {where} capability '{cap}'")


def _namespace(label: str, body: dict[str, Any]) -> NamespaceRule:
    where = f"namespace {label!r}"
    unknown = set(body) - {"policy", "capabilities", "variables"}
    if unknown:
        raise ValidationError(f"Failed to parse ACL policy: {where}: unknown key {sorted(unknown)[0]!r}")
    caps: list[str] = []
    var_rules: list[tuple[str, frozenset[str]]] = []
    policy = body.get("policy", "")
    if policy:
        if policy not in _NS_SHORTHAND:
            raise ValidationError(f"Invalid namespace policy '{policy}' for namespace {label!r}")
        caps.extend(_NS_SHORTHAND[policy])
        if policy in _NS_VARIABLES:
            var_rules.append(("*", frozenset(_NS_VARIABLES[policy])))
    explicit = _str_list(where, body.get("capabilities", []))
    _check_caps("namespace", explicit, NAMESPACE_CAPABILITIES)
    caps.extend(explicit)
    for vars_body in _bodies(f"{where} variables", body.get("variables", [])):
        for path, path_body in _labeled(f"{where} variables path", vars_body.get("path", [])):
            vcaps = _str_list(f"{where} variables path {path!r}", path_body.get("capabilities", []))
            _check_caps("variable", vcaps, VARIABLE_CAPABILITIES)
            var_rules.append((path, frozenset(vcaps)))
    return NamespaceRule(name=label, capabilities=frozenset(caps), variables=tuple(var_rules))


def _level(kind: str, value: Any, valid: frozenset[str]) -> str:
    bodies = list(_bodies(kind, value))
    level = ""
    for body in bodies:
        unknown = set(body) - {"policy"}
        if unknown:
            raise ValidationError(f"Failed to parse ACL policy: {kind}: unknown key {sorted(unknown)[0]!r}")
        level = str(body.get("policy", ""))
        if level not in valid:
            raise ValidationError(f"Invalid {kind} policy '{level}'")
    return level


def _host_volume(label: str, body: dict[str, Any]) -> HostVolumeRule:
    caps: list[str] = []
    policy = body.get("policy", "")
    if policy:
        if policy not in _HOST_VOLUME_SHORTHAND:
            raise ValidationError(f"Invalid host volume policy '{policy}' for {label!r}")
        caps.extend(_HOST_VOLUME_SHORTHAND[policy])
    explicit = _str_list(f"host_volume {label!r}", body.get("capabilities", []))
    _check_caps("host volume", explicit, HOST_VOLUME_CAPABILITIES)
    caps.extend(explicit)
    return HostVolumeRule(name=label, capabilities=frozenset(caps))


def parse(rules: str) -> Policy:
    """Parse and validate policy ``rules`` (HCL, or JSON when they start with ``{``)."""
    data = _load(rules)
    unknown = set(data) - _BLOCKS
    if unknown:
        raise ValidationError(f"Failed to parse ACL policy: unknown block {sorted(unknown)[0]!r}")
    namespaces = tuple(_namespace(k, v) for k, v in _labeled("namespace", data.get("namespace", [])))
    host_volumes = tuple(_host_volume(k, v) for k, v in _labeled("host_volume", data.get("host_volume", [])))
    return Policy(
        namespaces=namespaces,
        host_volumes=host_volumes,
        node=_level("node", data.get("node", []), _LEVEL_POLICIES),
        agent=_level("agent", data.get("agent", []), _LEVEL_POLICIES),
        operator=_level("operator", data.get("operator", []), _LEVEL_POLICIES),
        quota=_level("quota", data.get("quota", []), _LEVEL_POLICIES),
        plugin=_level("plugin", data.get("plugin", []), _PLUGIN_POLICIES),
    )

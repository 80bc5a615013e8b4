"""A token's compiled ACL (Nomad's ``acl.ACL``): what its policies allow, merged.

Built by :func:`compile_acl` from parsed :class:`~nomadd.server.acl.policy.Policy` objects;
``deny`` anywhere wins over any grant. Namespace, variable path and host volume names may be
globs (``*``); an exact name wins over a glob, and among globs the closest match (fewest
characters matched by ``*``) wins, as in Nomad.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from nomadd.server.acl.policy import Policy

__all__ = ["ACL", "MANAGEMENT_ACL", "compile_acl"]

_LEVELS = {"": 0, "list": 1, "read": 2, "write": 3}


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$", re.DOTALL)


def _closest(rules: dict[str, frozenset[str]], name: str) -> frozenset[str]:
    exact = rules.get(name)
    if exact is not None:
        return exact
    best: tuple[int, frozenset[str]] | None = None
    for pattern, caps in rules.items():
        if "*" in pattern and _glob(pattern).match(name):
            diff = len(name) - len(pattern.replace("*", ""))
            if best is None or diff < best[0]:
                best = (diff, caps)
    return best[1] if best is not None else frozenset()


def _merge_level(current: str, new: str) -> str:
    if "deny" in (current, new):
        return "deny"
    return new if _LEVELS.get(new, 0) > _LEVELS.get(current, 0) else current


@dataclass(frozen=True, slots=True, kw_only=True)
class ACL:
    management: bool = False
    namespaces: dict[str, frozenset[str]] = field(default_factory=dict)
    variables: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)  # ns -> path -> caps
    host_volumes: dict[str, frozenset[str]] = field(default_factory=dict)
    node: str = ""
    agent: str = ""
    operator: str = ""
    quota: str = ""
    plugin: str = ""

    # ---- namespaces ------------------------------------------------------------------------
    def allow_ns_op(self, namespace: str, capability: str) -> bool:
        if self.management:
            return True
        caps = _closest(self.namespaces, namespace)
        return "deny" not in caps and capability in caps

    def allow_ns_any(self, capability: str) -> bool:
        """Some namespace grants ``capability`` (for ``?namespace=*`` lists, filtered afterwards)."""
        if self.management:
            return True
        return any("deny" not in caps and capability in caps for caps in self.namespaces.values())

    def allow_namespace(self, namespace: str) -> bool:
        """Some capability (not ``deny``) in ``namespace``: it may be seen (Nomad's AllowNamespace)."""
        if self.management:
            return True
        caps = _closest(self.namespaces, namespace)
        return bool(caps) and "deny" not in caps

    def allow_variable_op(self, namespace: str, path: str, capability: str) -> bool:
        if self.management:
            return True
        ns_rules = self.variables.get(namespace)
        if ns_rules is None:
            matching = [p for p in self.variables if "*" in p and _glob(p).match(namespace)]
            if not matching:
                return False
            ns_rules = self.variables[min(matching, key=lambda p: len(namespace) - len(p.replace("*", "")))]
        caps = _closest(ns_rules, path)
        return "deny" not in caps and capability in caps

    def allow_variable_list(self, namespace: str) -> bool:
        """Some path of ``namespace`` (``*``: of any namespace) may be listed; items are filtered."""
        if self.management:
            return True
        return any(
            "list" in caps and "deny" not in caps
            for ns, paths in self.variables.items()
            if namespace == "*" or ns == namespace or ("*" in ns and _glob(ns).match(namespace))
            for caps in paths.values()
        )

    def allow_host_volume_op(self, name: str, capability: str) -> bool:
        if self.management:
            return True
        caps = _closest(self.host_volumes, name)
        return "deny" not in caps and capability in caps

    # ---- levels ----------------------------------------------------------------------------
    @staticmethod
    def _allows(level: str, want: str) -> bool:
        return level != "deny" and _LEVELS.get(level, 0) >= _LEVELS[want]

    def allow_node_read(self) -> bool:
        return self.management or self._allows(self.node, "read")

    def allow_node_write(self) -> bool:
        return self.management or self._allows(self.node, "write")

    def allow_agent_read(self) -> bool:
        return self.management or self._allows(self.agent, "read")

    def allow_agent_write(self) -> bool:
        return self.management or self._allows(self.agent, "write")

    def allow_operator_read(self) -> bool:
        return self.management or self._allows(self.operator, "read")

    def allow_operator_write(self) -> bool:
        return self.management or self._allows(self.operator, "write")

    def allow_plugin_read(self) -> bool:
        return self.management or self._allows(self.plugin, "read")


MANAGEMENT_ACL = ACL(management=True)


def compile_acl(policies: Iterable[Policy]) -> ACL:
    """Merge ``policies`` into one ACL (union of grants; deny wins)."""
    namespaces: dict[str, frozenset[str]] = {}
    variables: dict[str, dict[str, frozenset[str]]] = {}
    host_volumes: dict[str, frozenset[str]] = {}
    levels = {"node": "", "agent": "", "operator": "", "quota": "", "plugin": ""}
    for policy in policies:
        for ns in policy.namespaces:
            namespaces[ns.name] = namespaces.get(ns.name, frozenset()) | ns.capabilities
            paths = variables.setdefault(ns.name, {})
            for path, caps in ns.variables:
                paths[path] = paths.get(path, frozenset()) | caps
        for hv in policy.host_volumes:
            host_volumes[hv.name] = host_volumes.get(hv.name, frozenset()) | hv.capabilities
        for kind in levels:
            levels[kind] = _merge_level(levels[kind], getattr(policy, kind))
    return ACL(
        namespaces=namespaces,
        variables=variables,
        host_volumes=host_volumes,
        node=levels["node"],
        agent=levels["agent"],
        operator=levels["operator"],
        quota=levels["quota"],
        plugin=levels["plugin"],
    )

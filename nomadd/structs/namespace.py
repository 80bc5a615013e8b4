"""Namespaces and node pools: named objects that jobs (and variables, and nodes) live in.

Nomad's ``structs.Namespace`` and ``structs.NodePool``. Both are written only through Raft
(``server/fsm/namespace.py``); the ``default`` namespace and the built-in node pools ``default``
and ``all`` exist without ever being written (:func:`builtin_namespace`, :data:`BUILTIN_POOLS`).
The enterprise-only parts Nomad's open-source edition also keeps (quota, node pool, Vault and
Consul configuration) are carried as given, never acted on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "ALL_NODE_POOL",
    "BUILTIN_POOLS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_NODE_POOL",
    "MAX_DESCRIPTION_LENGTH",
    "Namespace",
    "NamespaceCapabilities",
    "NodePool",
    "builtin_namespace",
    "builtin_pool",
    "validate_namespace",
    "validate_node_pool",
]

DEFAULT_NAMESPACE = "default"
DEFAULT_NODE_POOL = "default"
ALL_NODE_POOL = "all"
MAX_DESCRIPTION_LENGTH = 256  # Nomad's maxNamespaceDescriptionLength / maxNodePoolDescriptionLength

_NAMESPACE_NAME = re.compile(r"^[a-zA-Z0-9-]{1,128}$")  # Nomad's validNamespaceName
_NODE_POOL_NAME = re.compile(r"^[a-zA-Z0-9-_]{1,128}$")  # Nomad's validNodePoolName


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceCapabilities:
    enabled_task_drivers: tuple[str, ...] = ()
    disabled_task_drivers: tuple[str, ...] = ()
    enabled_network_modes: tuple[str, ...] = ()
    disabled_network_modes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace:
    name: str
    description: str = ""
    quota: str = ""
    capabilities: NamespaceCapabilities | None = None
    node_pool_configuration: object = None
    vault_configuration: object = None
    consul_configuration: object = None
    meta: Mapping[str, str] = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0
    required_extra_claims: Mapping[str, str] = field(default_factory=dict)
    optional_extra_claims: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodePool:
    name: str
    description: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)
    scheduler_configuration: object = None
    node_identity_ttl: int = 0  # nanoseconds (Nomad's time.Duration; its Go api also sends "1h")
    create_index: int = 0
    modify_index: int = 0


def builtin_namespace() -> Namespace:
    """The ``default`` namespace as it is before anyone writes it (Nomad creates it at index 1)."""
    return Namespace(
        name=DEFAULT_NAMESPACE, description="Default shared namespace", create_index=1, modify_index=1
    )


BUILTIN_POOLS: Mapping[str, str] = {
    ALL_NODE_POOL: "Node pool with all nodes in the cluster.",
    DEFAULT_NODE_POOL: "Default node pool.",
}


def builtin_pool(name: str) -> NodePool:
    return NodePool(name=name, description=BUILTIN_POOLS[name], create_index=1, modify_index=1)


def validate_namespace(ns: Namespace) -> list[str]:
    """Nomad's ``Namespace.Validate``: every problem, worded as Nomad words it."""
    errs = []
    if not _NAMESPACE_NAME.match(ns.name):
        errs.append(f'invalid name "{ns.name}". Must match regex {_NAMESPACE_NAME.pattern}')
    if len(ns.description) > MAX_DESCRIPTION_LENGTH:
        errs.append(f"description longer than {MAX_DESCRIPTION_LENGTH}")
    return errs


def validate_node_pool(pool: NodePool) -> list[str]:
    """Nomad's ``NodePool.Validate``."""
    errs = []
    if not _NODE_POOL_NAME.match(pool.name):
        errs.append(f'invalid name "{pool.name}", must match regex {_NODE_POOL_NAME.pattern}')
    if len(pool.description) > MAX_DESCRIPTION_LENGTH:
        errs.append(f"description longer than {MAX_DESCRIPTION_LENGTH}")
    return errs

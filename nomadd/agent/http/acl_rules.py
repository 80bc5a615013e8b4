"""Which ACL capability each HTTP route needs: the ONE table, and the check that reads it.

Every route the agent serves has exactly one :class:`Rule` in :data:`ROUTE_RULES`, keyed by
``(method, path pattern)``; ``Router.wrap`` calls :func:`authorize` before the handler runs (Nomad's
authenticate → authorize order) and :func:`filter_result` on what a list returns, so a list leaves
out what the token may not read. A route without a rule is served to management tokens only, and
``tests/unit/agent/test_acl_routes.py`` fails for it.

The namespace of a namespaced rule is ``?namespace=`` (default ``default``), or the body's
namespace where the write carries one (``Job.Namespace``, a variable's ``Namespace``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nomadd.agent.http.body import read_json
from nomadd.server.acl.acl import ACL
from nomadd.server.acl.resolver import ERR_PERMISSION_DENIED, ACLResolver
from nomadd.server.acl.rules import (
    AGENT_READ,
    AGENT_WRITE,
    INTERNAL,
    MANAGEMENT,
    NODE_READ,
    NODE_WRITE,
    OPERATOR_READ,
    OPERATOR_WRITE,
    PUBLIC,
    SELF,
    TOKEN,
    Rule,
    check,
    ns_rule,
)
from nomadd.structs.errors import PermissionDeniedError, RPCError

__all__ = [
    "MANAGEMENT",
    "PUBLIC",
    "ROUTE_RULES",
    "Rule",
    "authorize",
    "filter_result",
    "rule_for",
    "token_of",
]


def token_of(req: web.Request) -> str:
    """The caller's ACL token: ``X-Nomad-Token``, else ``Authorization: Bearer <token>``."""
    token = req.headers.get("X-Nomad-Token", "")
    if token:
        return token.strip()
    auth = req.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


# Nomad Enterprise's paths, served by enterprise_endpoint.py with 501 for any caller.
_ENTERPRISE_METHODS = ("GET", "PUT", "POST", "DELETE")

# (method, aiohttp path) of every route that only answers 501.
ENTERPRISE_ONLY: tuple[tuple[str, str], ...] = (
    *(
        (method, path)
        for path in (
            "/v1/sentinel/policies",
            "/v1/sentinel/policy/{name:.+}",
            "/v1/quotas",
            "/v1/quota-usages",
            "/v1/quota",
            "/v1/quota/{name:.+}",
            "/v1/recommendation",
            "/v1/recommendations",
            "/v1/recommendations/apply",
            "/v1/recommendation/{id:.+}",
        )
        for method in _ENTERPRISE_METHODS
    ),
    ("PUT", "/v1/operator/license"),
)


def _pattern(path: str) -> str:
    """An aiohttp path as the route table names it: ``{name:regex}`` → ``{name}``."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def _both(path: str, rule: Rule) -> dict[tuple[str, str], Rule]:
    return {("PUT", path): rule, ("POST", path): rule}


ROUTE_RULES: dict[tuple[str, str], Rule] = {
    # ---- public: Nomad answers these without a token --------------------------------------
    ("GET", "/v1/agent/health"): PUBLIC,
    ("GET", "/v1/metrics"): PUBLIC,
    ("GET", "/v1/regions"): PUBLIC,
    ("GET", "/v1/status/leader"): PUBLIC,
    ("GET", "/v1/status/peers"): PUBLIC,
    **_both("/v1/acl/bootstrap", PUBLIC),
    **_both("/v1/acl/token/onetime/exchange", PUBLIC),
    ("POST", "/v1/internal/{method}"): INTERNAL,
    # ---- ACL ------------------------------------------------------------------------------
    ("GET", "/v1/acl/token/self"): TOKEN,
    **_both("/v1/acl/token/onetime", TOKEN),
    ("GET", "/v1/acl/policies"): TOKEN,  # management: all; others: the policies they hold
    ("GET", "/v1/acl/policy/{name}"): TOKEN,
    ("GET", "/v1/acl/roles"): TOKEN,
    ("GET", "/v1/acl/role/{id}"): TOKEN,
    ("GET", "/v1/acl/role/name/{name}"): TOKEN,
    ("GET", "/v1/acl/token/{accessor}"): TOKEN,  # management, or the token itself
    ("GET", "/v1/acl/tokens"): MANAGEMENT,
    **_both("/v1/acl/token", MANAGEMENT),
    **_both("/v1/acl/token/{accessor}", MANAGEMENT),
    ("DELETE", "/v1/acl/token/{accessor}"): MANAGEMENT,
    **_both("/v1/acl/policy/{name}", MANAGEMENT),
    ("DELETE", "/v1/acl/policy/{name}"): MANAGEMENT,
    **_both("/v1/acl/role", MANAGEMENT),
    **_both("/v1/acl/role/{id}", MANAGEMENT),
    ("DELETE", "/v1/acl/role/{id}"): MANAGEMENT,
    # ---- agent ----------------------------------------------------------------------------
    ("GET", "/v1/agent/self"): AGENT_READ,
    ("GET", "/v1/agent/members"): NODE_READ,
    ("GET", "/v1/agent/servers"): AGENT_READ,
    **_both("/v1/agent/servers", AGENT_WRITE),
    **_both("/v1/agent/join", AGENT_WRITE),
    **_both("/v1/agent/force-leave", AGENT_WRITE),
    **_both("/v1/agent/reload", AGENT_WRITE),
    # ---- jobs -----------------------------------------------------------------------------
    ("GET", "/v1/jobs"): ns_rule("list-jobs", filter=True),
    **_both("/v1/jobs", ns_rule("submit-job", body_ns="Job.Namespace")),
    ("GET", "/v1/job/{id}"): ns_rule("read-job"),
    **_both("/v1/job/{id}", ns_rule("submit-job", body_ns="Job.Namespace")),
    ("DELETE", "/v1/job/{id}"): ns_rule("submit-job"),
    ("GET", "/v1/job/{id}/allocations"): ns_rule("read-job"),
    ("GET", "/v1/job/{id}/evaluations"): ns_rule("read-job"),
    ("GET", "/v1/job/{id}/summary"): ns_rule("read-job"),
    ("GET", "/v1/job/{id}/versions"): ns_rule("read-job"),
    ("GET", "/v1/job/{id}/deployments"): ns_rule("read-job"),
    **_both("/v1/job/{id}/dispatch", ns_rule("dispatch-job")),
    **_both("/v1/job/{id}/periodic/force", ns_rule("submit-job")),
    **_both("/v1/job/{id}/plan", ns_rule("submit-job", body_ns="Job.Namespace")),
    **_both("/v1/job/{id}/revert", ns_rule("submit-job")),
    **_both("/v1/job/{id}/evaluate", ns_rule("submit-job")),
    **_both("/v1/job/{id}/stable", ns_rule("submit-job")),
    **_both("/v1/job/{id}/scale", ns_rule("scale-job")),
    ("GET", "/v1/job/{id}/scale"): ns_rule("read-job-scaling"),
    ("GET", "/v1/scaling/policies"): ns_rule("list-scaling-policies"),
    ("GET", "/v1/scaling/policy/{id}"): ns_rule("read-scaling-policy"),
    ("GET", "/v1/job/{id}/deployment"): ns_rule("read-job"),
    # ---- deployments (the RPC checks the deployment's own namespace) ----------------------
    ("GET", "/v1/deployments"): ns_rule("read-job", filter=True),
    ("GET", "/v1/deployment/{id}"): ns_rule("read-job"),
    ("GET", "/v1/deployment/allocations/{id}"): ns_rule("read-job"),
    **_both("/v1/deployment/fail/{id}", ns_rule("submit-job")),
    **_both("/v1/deployment/pause/{id}", ns_rule("submit-job")),
    **_both("/v1/deployment/promote/{id}", ns_rule("submit-job")),
    **_both("/v1/deployment/allocation-health/{id}", ns_rule("submit-job")),
    **_both("/v1/deployment/unblock/{id}", ns_rule("submit-job")),
    # ---- allocations and evaluations ------------------------------------------------------
    ("GET", "/v1/allocations"): ns_rule("read-job", filter=True),
    ("GET", "/v1/allocation/{id}"): ns_rule("read-job", filter=True, object_param="alloc:id"),
    **_both("/v1/allocation/{id}/stop", ns_rule("alloc-lifecycle", object_param="alloc:id")),
    # ---- services (nomadd's own catalog, Nomad's native service discovery) ------------------
    ("GET", "/v1/services"): ns_rule("read-job", filter=True),
    ("GET", "/v1/service/{name}"): ns_rule("read-job"),
    ("DELETE", "/v1/service/{name}/{id}"): ns_rule("submit-job"),
    ("GET", "/v1/allocation/{id}/services"): ns_rule("read-job", object_param="alloc:id"),
    ("GET", "/v1/client/allocation/{id}/checks"): ns_rule("read-job", object_param="alloc:id"),
    **_both("/v1/client/allocation/{id}/signal", ns_rule("alloc-lifecycle", object_param="alloc:id")),
    ("GET", "/v1/client/fs/logs/{alloc}"): ns_rule("read-logs", object_param="alloc:alloc"),
    **{
        ("GET", f"/v1/client/fs/{op}/{{alloc}}"): ns_rule("read-fs", object_param="alloc:alloc")
        for op in ("ls", "stat", "cat", "readat", "stream")
    },
    ("GET", "/v1/client/allocation/{id}/stats"): ns_rule("read-job", object_param="alloc:id"),
    **_both("/v1/client/allocation/{id}/restart", ns_rule("alloc-lifecycle", object_param="alloc:id")),
    ("GET", "/v1/client/allocation/{id}/gc"): ns_rule("alloc-lifecycle", object_param="alloc:id"),
    ("PUT", "/v1/client/allocation/{id}/gc"): ns_rule("alloc-lifecycle", object_param="alloc:id"),
    # raw_exec tasks also need alloc-node-exec (checked by the handler, which knows the driver)
    ("GET", "/v1/client/allocation/{id}/exec"): ns_rule("alloc-exec", object_param="alloc:id"),
    ("GET", "/v1/client/gc"): NODE_WRITE,
    ("PUT", "/v1/client/gc"): NODE_WRITE,
    ("GET", "/v1/client/stats"): NODE_READ,
    ("GET", "/v1/evaluations"): ns_rule("read-job", filter=True),
    ("GET", "/v1/evaluation/{id}"): ns_rule("read-job", filter=True, object_param="eval:id"),
    ("GET", "/v1/evaluation/{id}/allocations"): ns_rule("read-job", filter=True, object_param="eval:id"),
    # ---- volumes (static host volumes are in the node; nothing to list, see volume_endpoint)
    ("GET", "/v1/volumes"): ns_rule("host-volume-read"),
    ("GET", "/v1/volume/host/{id}"): ns_rule("host-volume-read"),
    **_both("/v1/volume/host/create", ns_rule("host-volume-create")),
    **_both("/v1/volume/host/register", ns_rule("host-volume-register")),
    # ---- nodes ----------------------------------------------------------------------------
    ("GET", "/v1/nodes"): NODE_READ,
    ("GET", "/v1/node/{id}"): NODE_READ,
    # node:read, and only the allocations of namespaces the token may read-job in (Nomad's)
    ("GET", "/v1/node/{id}/allocations"): Rule("node", "read", filter=True, item_cap="read-job"),
    **_both("/v1/node/{id}/drain", NODE_WRITE),
    **_both("/v1/node/{id}/eligibility", NODE_WRITE),
    **_both("/v1/node/{id}/purge", NODE_WRITE),
    # ---- operator and system --------------------------------------------------------------
    ("GET", "/v1/operator/raft/configuration"): OPERATOR_READ,
    ("DELETE", "/v1/operator/raft/peer"): OPERATOR_WRITE,
    **_both("/v1/operator/raft/transfer-leadership", OPERATOR_WRITE),
    ("GET", "/v1/operator/autopilot/configuration"): OPERATOR_READ,
    ("PUT", "/v1/operator/autopilot/configuration"): OPERATOR_WRITE,
    ("GET", "/v1/operator/autopilot/health"): OPERATOR_READ,
    ("GET", "/v1/operator/snapshot"): MANAGEMENT,  # Nomad: management token only
    ("PUT", "/v1/operator/snapshot"): MANAGEMENT,
    ("PUT", "/v1/system/gc"): MANAGEMENT,
    # ---- keyrings: gossip (agent) and root (operator) --------------------------------------
    ("GET", "/v1/agent/keyring/list"): AGENT_READ,
    **_both("/v1/agent/keyring/install", AGENT_WRITE),
    **_both("/v1/agent/keyring/use", AGENT_WRITE),
    **_both("/v1/agent/keyring/remove", AGENT_WRITE),
    ("GET", "/v1/operator/keyring/keys"): OPERATOR_READ,
    **_both("/v1/operator/keyring/rotate", MANAGEMENT),
    # ---- namespaces, node pools, search: any valid token; the server shows only what it may see
    ("GET", "/v1/namespaces"): TOKEN,
    ("GET", "/v1/namespace/{name}"): TOKEN,
    **_both("/v1/namespace", MANAGEMENT),
    **_both("/v1/namespace/{name}", MANAGEMENT),
    ("DELETE", "/v1/namespace/{name}"): MANAGEMENT,
    ("GET", "/v1/node/pools"): NODE_READ,
    ("GET", "/v1/node/pool/{name}"): NODE_READ,
    ("GET", "/v1/node/pool/{name}/nodes"): NODE_READ,
    ("GET", "/v1/node/pool/{name}/jobs"): Rule("node", "read", filter=True, item_cap="list-jobs"),
    **_both("/v1/node/pools", MANAGEMENT),
    **_both("/v1/node/pool/{name}", MANAGEMENT),
    ("DELETE", "/v1/node/pool/{name}"): MANAGEMENT,
    **_both("/v1/search", TOKEN),
    **_both("/v1/search/fuzzy", TOKEN),
    # ---- job specifications: parsing needs parse-job (or submit-job, which implies it) ----
    **_both("/v1/jobs/parse", TOKEN),  # the handler checks parse-job or submit-job
    **_both("/v1/validate/job", ns_rule("read-job", body_ns="Job.Namespace")),
    # ---- variables ------------------------------------------------------------------------
    ("GET", "/v1/vars"): Rule("var", "list", filter=True),
    ("GET", "/v1/var/{path}"): Rule("var", "read"),
    **_both("/v1/var/{path}", Rule("var", "write", body_ns="Namespace")),
    ("DELETE", "/v1/var/{path}"): Rule("var", "destroy"),
    # ---- events: the endpoint checks each topic asked for (Nomad's aclAllowsSubscription) ----
    ("GET", "/v1/event/stream"): SELF,
    # ---- Nomad Enterprise's paths: 501 for anyone, as the open-source edition answers ---------
    **{(m, _pattern(p)): PUBLIC for m, p in ENTERPRISE_ONLY},
    ("GET", "/v1/operator/license"): PUBLIC,
}


def rule_for(method: str, path: str) -> Rule:
    """The rule of a route; a route missing from the table is management-only."""
    return ROUTE_RULES.get((method, _pattern(path)), MANAGEMENT)


async def _namespace(req: web.Request, rule: Rule) -> str:
    namespace = req.query.get("namespace", "") or "default"
    if rule.body_ns and req.body_exists:
        try:
            body: Any = await read_json(req)
        except RPCError:
            return namespace  # the handler answers the malformed body
        for part in rule.body_ns.split("."):
            body = body.get(part) if isinstance(body, dict) else None
        if isinstance(body, str) and body:
            namespace = body
    return namespace


def _deny() -> PermissionDeniedError:
    return PermissionDeniedError(ERR_PERMISSION_DENIED)


ObjectNamespace = Callable[[str, str, str], Awaitable["str | None"]]


async def authorize(
    resolver: ACLResolver, req: web.Request, rule: Rule, object_namespace: ObjectNamespace | None = None
) -> ACL | None:
    """Check ``rule`` for the request's token with the agent's resolver; returns the caller's ACL
    (``None``: no check made). ``object_namespace(kind, id, token)`` finds the namespace of the
    allocation or evaluation a rule's ``object_param`` names."""
    if not resolver.enabled or rule.kind in ("public", "internal"):
        return None
    secret = token_of(req)
    if rule.kind == "token":
        if not secret:
            raise _deny()
        await resolver.lookup(secret)  # malformed → 400, unknown or expired → 403
        return None
    acl = await resolver.resolve(secret)
    namespace = await _namespace(req, rule) if rule.kind in ("ns", "var") else "default"
    if rule.object_param and object_namespace is not None:
        kind, _, param = rule.object_param.partition(":")
        namespace = await object_namespace(kind, req.match_info.get(param, ""), secret) or namespace
    allowed = check(acl, rule, namespace, req.match_info.get("path", ""))
    if not allowed:
        raise _deny()
    if rule.cap == "submit-job" and rule.body_ns and not await _may_mount(req, acl):
        raise _deny()
    return acl


async def _may_mount(req: web.Request, acl: ACL) -> bool:
    """Nomad's volume check of a job submission: each host volume a group requests needs the
    token's ``mount-readwrite`` on it, or ``mount-readonly`` for a read-only request."""
    if acl.management or not req.body_exists:
        return True
    try:
        body: Any = await read_json(req)
    except RPCError:
        return True  # the handler answers the malformed body
    job = body.get("Job") if isinstance(body, dict) else None
    groups = job.get("TaskGroups") if isinstance(job, dict) else None
    for tg in groups if isinstance(groups, list) else ():
        volumes = tg.get("Volumes") if isinstance(tg, dict) else None
        for vol in volumes.values() if isinstance(volumes, dict) else ():
            if not isinstance(vol, dict) or vol.get("Type") != "host":
                continue
            source = str(vol.get("Source") or "")
            if acl.allow_host_volume_op(source, "mount-readwrite"):
                continue
            if vol.get("ReadOnly") is True and acl.allow_host_volume_op(source, "mount-readonly"):
                continue
            return False
    return True


def filter_result(rule: Rule, acl: ACL | None, value: object) -> object:
    """Leave out of a list what ``acl`` may not read (items carry ``Namespace``, variables
    ``Path``); a single object (an allocation or evaluation found by ID, whatever ``?namespace=``
    said) the token may not read is refused."""
    if acl is None or acl.management or not rule.filter:
        return value
    if isinstance(value, dict) and "Namespace" in value:
        if not acl.allow_ns_op(str(value["Namespace"] or "default"), rule.item_cap or rule.cap):
            raise _deny()
        return value
    if not isinstance(value, list):
        return value

    def readable(item: object) -> bool:
        if not isinstance(item, dict):
            return False
        namespace = str(item.get("Namespace") or "default")
        if rule.kind == "var":
            return acl.allow_variable_op(namespace, str(item.get("Path", "")), rule.cap)
        return acl.allow_ns_op(namespace, rule.item_cap or rule.cap)

    return [item for item in value if readable(item)]

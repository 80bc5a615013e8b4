"""What a request needs (:class:`Rule`), the one decision (:func:`check`), and the rule of every
internal RPC method (:data:`RPC_RULES`, checked by :func:`authorize_rpc`).

The HTTP edge has its own table of routes (``agent/http/acl_rules.py``) built from the same
rules and decided by the same :func:`check`. An RPC is checked when it arrives over the internal
RPC (a follower forwarding a user's request, a client-only agent's API): the caller's token is the
request envelope's ``auth_token``. Methods the clients and servers call for themselves are
``internal``: the internal RPC authenticates those callers by their own credentials.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from nomadd.server.acl.acl import ACL
from nomadd.server.acl.resolver import ERR_PERMISSION_DENIED, ACLResolver
from nomadd.server.state import store_allocs, store_deployments, store_evals, store_nodes
from nomadd.server.state.store import StateSnapshot
from nomadd.structs.errors import PermissionDeniedError
from nomadd.structs.requests import CallerKind, Envelope

__all__ = [
    "AGENT_READ",
    "AGENT_WRITE",
    "INTERNAL",
    "MANAGEMENT",
    "NODE_READ",
    "NODE_WRITE",
    "OPERATOR_READ",
    "OPERATOR_WRITE",
    "PUBLIC",
    "RPC_RULES",
    "SELF",
    "TOKEN",
    "Rule",
    "authorize_rpc",
    "check",
    "ns_rule",
    "object_namespace",
]


@dataclass(frozen=True, slots=True)
class Rule:
    """``kind``: ``public`` (no check), ``internal`` (authenticated by the internal RPC's own
    credentials), ``token`` (any valid token), ``self`` (the endpoint checks: the ``ACL.*``
    methods), ``management``, ``node``/``agent``/``operator`` (``cap`` ``read`` or ``write``),
    ``ns`` (a namespace capability), ``var`` (a variables capability on a path)."""

    kind: str
    cap: str = ""
    filter: bool = False  # a list: leave out items of namespaces (or paths) the token may not read
    body_ns: str = ""  # HTTP: dotted path of the namespace in a JSON body ("Job.Namespace")
    # HTTP: the URL parameter naming an allocation ("alloc:id") or evaluation ("eval:id") whose own
    # namespace is checked (Nomad checks the object's namespace, whatever ?namespace= says)
    object_param: str = ""
    item_cap: str = ""  # the namespace capability a filtered list's items need (default: ``cap``)


def ns_rule(cap: str, *, filter: bool = False, body_ns: str = "", object_param: str = "") -> Rule:
    return Rule("ns", cap, filter=filter, body_ns=body_ns, object_param=object_param)


PUBLIC = Rule("public")
INTERNAL = Rule("internal")
TOKEN = Rule("token")
SELF = Rule("self")
MANAGEMENT = Rule("management")
NODE_READ, NODE_WRITE = Rule("node", "read"), Rule("node", "write")
AGENT_READ, AGENT_WRITE = Rule("agent", "read"), Rule("agent", "write")
OPERATOR_READ, OPERATOR_WRITE = Rule("operator", "read"), Rule("operator", "write")


def check(acl: ACL, rule: Rule, namespace: str = "default", path: str = "") -> bool:
    """Whether ``acl`` satisfies ``rule`` (``namespace``/``path``: for ``ns`` and ``var`` rules)."""
    kind = rule.kind
    if kind == "management":
        return acl.management
    if kind == "node":
        return acl.allow_node_write() if rule.cap == "write" else acl.allow_node_read()
    if kind == "agent":
        return acl.allow_agent_write() if rule.cap == "write" else acl.allow_agent_read()
    if kind == "operator":
        return acl.allow_operator_write() if rule.cap == "write" else acl.allow_operator_read()
    if kind == "ns":
        if rule.filter and namespace == "*":
            return acl.allow_ns_any(rule.cap)  # the items are filtered afterwards
        return acl.allow_ns_op(namespace, rule.cap)
    if kind == "var":
        if rule.filter:  # a listing: the items are filtered afterwards
            return acl.allow_variable_list(namespace)
        return acl.allow_variable_op(namespace, path.strip("/"), rule.cap)
    return kind in ("public", "internal", "self")


def _deny() -> PermissionDeniedError:
    return PermissionDeniedError(ERR_PERMISSION_DENIED)


_READ_JOB = ns_rule("read-job")
_VAR_READ = Rule("var", "read")

_ACL_METHODS = (
    "Bootstrap",
    "UpsertTokens",
    "DeleteTokens",
    "GetToken",
    "ListTokens",
    "ResolveToken",
    "UpsertPolicies",
    "DeletePolicies",
    "GetPolicy",
    "ListPolicies",
    "UpsertRoles",
    "DeleteRoles",
    "GetRole",
    "ListRoles",
    "UpsertOneTimeToken",
    "ExchangeOneTimeToken",
)

RPC_RULES: dict[str, Rule] = {
    # the ACL endpoint checks its callers itself (management, or the token's own objects)
    **{f"ACL.{m}": SELF for m in _ACL_METHODS},
    # what clients call for their own node (the internal RPC authenticates them)
    "Node.Register": INTERNAL,
    "Node.UpdateStatus": INTERNAL,
    "Node.GetClientAllocs": INTERNAL,
    "Node.UpdateAlloc": INTERNAL,
    "ServiceRegistration.Upsert": INTERNAL,
    "Alloc.GetAllocs": INTERNAL,
    # users' requests
    "Job.Register": ns_rule("submit-job"),
    "Job.Deregister": ns_rule("submit-job"),
    "Job.GetJob": _READ_JOB,
    "Job.GetJobVersions": _READ_JOB,
    "Job.GetJobVersionDiffs": _READ_JOB,
    "Job.Plan": ns_rule("submit-job"),
    "Job.Revert": ns_rule("submit-job"),
    "Job.Scale": ns_rule("scale-job"),
    "Job.ScaleStatus": ns_rule("read-job-scaling"),
    "Job.Evaluate": ns_rule("submit-job"),
    "Job.Stable": ns_rule("submit-job"),
    "Scaling.ListPolicies": ns_rule("list-scaling-policies"),
    "Scaling.GetPolicy": ns_rule("read-scaling-policy"),
    "Job.Allocations": _READ_JOB,
    "Job.Evaluations": _READ_JOB,
    "Job.Summary": _READ_JOB,
    "Job.Dispatch": ns_rule("dispatch-job"),
    "Periodic.Force": ns_rule("submit-job"),
    "Job.List": ns_rule("list-jobs", filter=True),
    "Alloc.GetAlloc": _READ_JOB,
    "Alloc.List": ns_rule("read-job", filter=True),
    "Alloc.Stop": ns_rule("alloc-lifecycle"),
    "Alloc.GetServiceRegistrations": _READ_JOB,
    "ServiceRegistration.List": ns_rule("read-job", filter=True),
    "ServiceRegistration.GetService": _READ_JOB,
    "ServiceRegistration.DeleteByID": ns_rule("submit-job"),
    "Eval.GetEval": _READ_JOB,
    "Eval.Allocations": _READ_JOB,
    "Eval.List": ns_rule("read-job", filter=True),
    "Deployment.GetDeployment": _READ_JOB,
    "Deployment.List": ns_rule("read-job", filter=True),
    "Deployment.Allocations": _READ_JOB,
    "Deployment.Fail": ns_rule("submit-job"),
    "Deployment.Pause": ns_rule("submit-job"),
    "Deployment.Promote": ns_rule("submit-job"),
    "Deployment.SetAllocHealth": ns_rule("submit-job"),
    "Deployment.Unblock": ns_rule("submit-job"),
    "Node.GetNode": NODE_READ,
    "Node.List": NODE_READ,
    "Node.HeartbeatStats": AGENT_READ,
    "Node.Deregister": NODE_WRITE,
    "Node.UpdateDrain": NODE_WRITE,
    "Node.UpdateEligibility": NODE_WRITE,
    "Operator.RaftGetConfiguration": OPERATOR_READ,
    "Operator.RaftRemovePeerByAddress": OPERATOR_WRITE,
    "Operator.RaftRemovePeerByID": OPERATOR_WRITE,
    "Operator.TransferLeadershipToPeer": OPERATOR_WRITE,
    "Operator.AutopilotGetConfiguration": OPERATOR_READ,
    "Operator.AutopilotSetConfiguration": OPERATOR_WRITE,
    "Operator.ServerHealth": OPERATOR_READ,
    "Operator.SnapshotSave": MANAGEMENT,  # Nomad: a snapshot holds every secret in the state
    "Operator.SnapshotRestoreChunk": MANAGEMENT,
    "Status.AutopilotServerStats": INTERNAL,  # the leader's autopilot asks each server
    "Status.Leader": PUBLIC,
    "Status.Peers": PUBLIC,
    "Status.Members": NODE_READ,
    "Status.Ping": PUBLIC,
    "Status.Regions": PUBLIC,
    "System.GarbageCollect": MANAGEMENT,
    "Keyring.List": OPERATOR_READ,
    "Keyring.Rotate": MANAGEMENT,
    "GossipKeyring.Local": INTERNAL,  # one server's part of a keyring change (servers only)
    # a follower's scheduling workers (servers only, nomadd.rpc.auth): Nomad's AllowServerOp, a
    # server's identity or else a management token
    "Eval.Dequeue": MANAGEMENT,
    "Eval.Ack": MANAGEMENT,
    "Eval.Nack": MANAGEMENT,
    "Plan.Submit": MANAGEMENT,
    # namespaces and search: the endpoint shows only what the token may see
    "Namespace.GetNamespace": SELF,
    "Namespace.ListNamespaces": SELF,
    "Search.PrefixSearch": SELF,
    "Search.FuzzySearch": SELF,
    "Job.Validate": _READ_JOB,
    "Namespace.UpsertNamespaces": MANAGEMENT,
    "Namespace.DeleteNamespaces": MANAGEMENT,
    "NodePool.UpsertNodePools": MANAGEMENT,
    "NodePool.DeleteNodePools": MANAGEMENT,
    "NodePool.GetNodePool": NODE_READ,
    "NodePool.List": NODE_READ,
    "NodePool.ListNodes": NODE_READ,
    "NodePool.ListJobs": Rule("node", "read", filter=True, item_cap="list-jobs"),
    "Variables.Read": _VAR_READ,
    "Variables.List": Rule("var", "list", filter=True),
    "Variables.Apply": Rule("var", "write"),  # a delete needs "destroy" (see authorize_rpc)
}


def object_namespace(snap: StateSnapshot, req: Envelope) -> str | None:
    """The namespace of the allocation, evaluation or deployment a request names by ID (or unique prefix):
    Nomad checks the object's own namespace, whatever the envelope says."""
    alloc_id = getattr(req, "alloc_id", "")
    eval_id = getattr(req, "eval_id", "")
    dep_id = getattr(req, "deployment_id", "")
    if alloc_id:
        found = {a.namespace for a in store_allocs.list_allocs(snap, "*", alloc_id)}
    elif eval_id:
        found = {e.namespace for e in store_evals.list_evals(snap, "*", eval_id)}
    elif dep_id:
        found = {d.namespace for d in store_deployments.list_deployments(snap, "*", dep_id)}
    else:
        return None
    return found.pop() if len(found) == 1 else None


# What a client may do to its own node with the node's SecretID as its token (Nomad's node
# identity), whatever the ACLs: drain itself as it stops (drain_on_shutdown) and read its node
# to follow that drain. An API user relayed by the client's agent does not know that secret.
_NODE_SELF = frozenset({"Node.UpdateDrain", "Node.GetNode"})


def _node_itself(name: str, req: Envelope, snapshot: Callable[[], StateSnapshot] | None) -> bool:
    caller = req.caller
    if name not in _NODE_SELF or caller.kind != CallerKind.NODE or snapshot is None or not req.auth_token:
        return False
    if getattr(req, "node_id", "") != caller.node_id:
        return False
    node = store_nodes.get(snapshot(), caller.node_id)
    return node is not None and hmac.compare_digest(node.secret_id.encode(), req.auth_token.encode())


async def authorize_rpc(
    resolver: ACLResolver, name: str, req: Envelope, snapshot: Callable[[], StateSnapshot] | None = None
) -> None:
    """Check the rule of RPC ``name`` for ``req.auth_token``; a method without a rule needs a
    management token. With ``snapshot``, a request naming an allocation or evaluation is checked
    against that object's namespace."""
    if not resolver.enabled or req.caller.kind == CallerKind.SERVER:
        return  # a server's own request (verified by the internal RPC's server credential)
    rule = RPC_RULES.get(name, MANAGEMENT)
    if rule.kind in ("public", "internal", "self") or _node_itself(name, req, snapshot):
        return
    acl = await resolver.resolve(req.auth_token)
    namespaces = {req.namespace or "default"}
    if snapshot is not None and rule.kind == "ns":
        own = object_namespace(snapshot(), req)
        if own is not None:
            namespaces = {own}
    job = getattr(req, "job", None)
    if job is not None:  # Job.Register: the job's own namespace counts too
        namespaces.add(getattr(job, "namespace", "") or "default")
    path = str(getattr(req, "path", "") or getattr(req, "prefix", ""))
    if rule.kind == "var" and str(getattr(req, "op", "")) == "delete":
        rule = Rule("var", "destroy")
    if not all(check(acl, rule, ns, path) for ns in namespaces):
        raise _deny()

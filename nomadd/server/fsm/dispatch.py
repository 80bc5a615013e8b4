"""The FSM's switch: every :class:`MessageType`, what it carries and what applies it.

Built explicitly here and nowhere else (Nomad's ``fsm.go`` ``Apply``); nothing registers
handlers at import time. ``tests/unit/server/test_fsm_dispatch.py`` checks that every message
type has a case or is marked ignorable.
"""

from __future__ import annotations

from typing import Any

from nomadd.server.fsm import (
    EntryKind,
    acl,
    autopilot,
    deployment,
    job,
    job_versions,
    keyring,
    namespace,
    node,
    periodic,
    plan,
    services,
    snapshot,
    struct_entry,
    variables,
)
from nomadd.server.fsm import eval as evals
from nomadd.server.state.store import Txn
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.acl import (
    ACLBootstrapEntry,
    ACLDeleteEntry,
    ACLOneTimeExchangeEntry,
    ACLOneTimeTokenEntry,
    ACLPoliciesEntry,
    ACLRolesEntry,
    ACLTokensEntry,
)
from nomadd.structs.requests.alloc import AllocUpdateEntry
from nomadd.structs.requests.autopilot import AutopilotSetConfigEntry
from nomadd.structs.requests.deployment import DeploymentUpdateEntry
from nomadd.structs.requests.eval import EvalDeleteEntry, EvalUpdateEntry
from nomadd.structs.requests.job import JobDeregisterEntry, JobRegisterBatchEntry, JobRegisterEntry
from nomadd.structs.requests.job_plan import JobStabilityEntry, ScalingEventEntry
from nomadd.structs.requests.keyring import RootKeyUpsertEntry
from nomadd.structs.requests.namespace import NamedDeleteEntry, NamespaceUpsertEntry, NodePoolUpsertEntry
from nomadd.structs.requests.node import (
    AllocClientUpdateEntry,
    NodeDeregisterEntry,
    NodeDrainEntry,
    NodeEligibilityEntry,
    NodeRegisterEntry,
    NodeStatusEntry,
)
from nomadd.structs.requests.periodic import PeriodicLaunchEntry
from nomadd.structs.requests.services import ServiceDeleteEntry, ServiceUpsertEntry
from nomadd.structs.requests.snapshot import SnapshotAbortEntry, SnapshotChunkEntry
from nomadd.structs.requests.variables import VarDeleteEntry, VarUpsertEntry

__all__ = ["entry_kinds"]


def _apply_noop(txn: Txn, entry: None) -> None:
    return None


def _no_payload(entry: None) -> bytes:
    return b""


def _no_entry(payload: bytes) -> None:
    return None


def _reserved() -> EntryKind[Any]:
    """A type this build knows but has no feature for yet: applied as a no-op."""
    return EntryKind(apply=_apply_noop, encode=_no_payload, decode=_no_entry, ignorable=True)


def entry_kinds(restorer: snapshot.SnapshotRestorer | None = None) -> dict[int, EntryKind[Any]]:
    """The table an :class:`~nomadd.server.fsm.FSM` applies entries with; ``restorer`` holds
    this FSM's snapshot-restore state (a fresh one when not given)."""
    restorer = restorer or snapshot.SnapshotRestorer()
    t = MessageType
    return {
        t.NOOP: EntryKind(apply=_apply_noop, encode=_no_payload, decode=_no_entry),
        t.VAR_UPSERT: struct_entry(VarUpsertEntry, variables.apply_var_upsert),
        t.VAR_DELETE: struct_entry(VarDeleteEntry, variables.apply_var_delete),
        t.NODE_REGISTER: struct_entry(NodeRegisterEntry, node.apply_register),
        t.NODE_DEREGISTER: struct_entry(NodeDeregisterEntry, node.apply_deregister),
        t.NODE_UPDATE_STATUS: struct_entry(NodeStatusEntry, node.apply_status),
        t.NODE_UPDATE_DRAIN: struct_entry(NodeDrainEntry, node.apply_drain),
        t.NODE_UPDATE_ELIGIBILITY: struct_entry(NodeEligibilityEntry, node.apply_eligibility),
        t.JOB_REGISTER: struct_entry(JobRegisterEntry, job.apply_register),
        t.JOB_DEREGISTER: struct_entry(JobDeregisterEntry, job.apply_deregister),
        t.EVAL_UPDATE: struct_entry(EvalUpdateEntry, evals.apply_eval_update),
        t.EVAL_DELETE: struct_entry(EvalDeleteEntry, evals.apply_eval_delete),
        t.ALLOC_UPDATE: struct_entry(AllocUpdateEntry, plan.apply_alloc_update),
        t.ALLOC_CLIENT_UPDATE: struct_entry(AllocClientUpdateEntry, node.apply_alloc_client_update),
        t.DEPLOYMENT_UPDATE: struct_entry(DeploymentUpdateEntry, deployment.apply_deployment_update),
        t.JOB_REGISTER_BATCH: struct_entry(JobRegisterBatchEntry, job.apply_register_batch),
        t.PLAN_RESULTS: EntryKind(  # placements as a base + differences (fsm/plan.py)
            apply=plan.apply_plan_results, encode=plan.encode_plan_results, decode=plan.decode_plan_results
        ),
        t.ACL_POLICY_UPSERT: struct_entry(ACLPoliciesEntry, acl.apply_policy_upsert),
        t.ACL_POLICY_DELETE: struct_entry(ACLDeleteEntry, acl.apply_policy_delete),
        t.ACL_TOKEN_UPSERT: struct_entry(ACLTokensEntry, acl.apply_token_upsert),
        t.ACL_TOKEN_DELETE: struct_entry(ACLDeleteEntry, acl.apply_token_delete),
        t.ACL_TOKEN_BOOTSTRAP: struct_entry(ACLBootstrapEntry, acl.apply_bootstrap),
        t.ACL_ROLE_UPSERT: struct_entry(ACLRolesEntry, acl.apply_role_upsert),
        t.ACL_ROLE_DELETE: struct_entry(ACLDeleteEntry, acl.apply_role_delete),
        t.ACL_ONE_TIME_TOKEN_UPSERT: struct_entry(ACLOneTimeTokenEntry, acl.apply_one_time_upsert),
        t.ACL_ONE_TIME_TOKEN_EXCHANGE: struct_entry(ACLOneTimeExchangeEntry, acl.apply_one_time_exchange),
        t.ROOT_KEY_UPSERT: struct_entry(RootKeyUpsertEntry, keyring.apply_root_key_upsert),
        t.SNAPSHOT_RESTORE_CHUNK: struct_entry(
            SnapshotChunkEntry, restorer.apply_chunk, waits=restorer.waits, busy=restorer.decoding
        ),
        t.SNAPSHOT_RESTORE_ABORT: struct_entry(SnapshotAbortEntry, restorer.apply_abort),
        t.AUTOPILOT_SET_CONFIG: struct_entry(AutopilotSetConfigEntry, autopilot.apply_set_config),
        t.NAMESPACE_UPSERT: struct_entry(NamespaceUpsertEntry, namespace.apply_namespace_upsert),
        t.NAMESPACE_DELETE: struct_entry(NamedDeleteEntry, namespace.apply_namespace_delete),
        t.NODE_POOL_UPSERT: struct_entry(NodePoolUpsertEntry, namespace.apply_node_pool_upsert),
        t.NODE_POOL_DELETE: struct_entry(NamedDeleteEntry, namespace.apply_node_pool_delete),
        t.PERIODIC_LAUNCH: struct_entry(PeriodicLaunchEntry, periodic.apply_periodic_launch),
        t.JOB_STABILITY: struct_entry(JobStabilityEntry, job_versions.apply_stability),
        t.SCALING_EVENT_REGISTER: struct_entry(ScalingEventEntry, job_versions.apply_scaling_event),
        t.SERVICE_REGISTRATION_UPSERT: struct_entry(ServiceUpsertEntry, services.apply_service_upsert),
        t.SERVICE_REGISTRATION_DELETE: struct_entry(ServiceDeleteEntry, services.apply_service_delete),
    }

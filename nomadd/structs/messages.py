"""Raft message types: the numbered kinds of entries the FSM applies.

Numbers are explicit, **append-only and never reused** (docs/contributing/style.md §Raft and the
FSM): a journal written by an older build must replay the same way on a newer one. A type whose
number has :data:`IGNORE_UNKNOWN_FLAG` set may be skipped by an old server that does not know it;
any other unknown type crashes the node, because skipping it would make its state diverge.

Payloads are msgpack maps built by the proposing endpoint (which also makes IDs and timestamps,
so ``apply`` stays deterministic).
"""

from __future__ import annotations

import enum

__all__ = ["IGNORE_UNKNOWN_FLAG", "MessageType"]

IGNORE_UNKNOWN_FLAG = 128  # Nomad's IgnoreUnknownTypeFlag: old servers may skip such entries


class MessageType(enum.IntEnum):
    """Kinds of Raft entries. Append new members at the end with the next free number."""

    NOOP = 0  # leader barrier; changes nothing but the applied index
    VAR_UPSERT = 1  # Variables.Apply set (check-and-set optional)
    VAR_DELETE = 2  # Variables.Apply delete (check-and-set optional)
    NODE_REGISTER = 3  # Node.Register
    NODE_DEREGISTER = 4  # Node.Deregister / batch
    NODE_UPDATE_STATUS = 5  # Node.UpdateStatus
    NODE_UPDATE_DRAIN = 6  # Node.UpdateDrain
    NODE_UPDATE_ELIGIBILITY = 7  # Node.UpdateEligibility
    JOB_REGISTER = 8  # Job.Register (+ its eval)
    JOB_DEREGISTER = 9  # Job.Deregister (+ its eval)
    EVAL_UPDATE = 10  # Eval.Update / upsert
    EVAL_DELETE = 11  # eval GC
    ALLOC_UPDATE = 12  # desired transitions + their evals (Alloc.Stop)
    ALLOC_CLIENT_UPDATE = 13  # Node.UpdateAlloc from clients
    DEPLOYMENT_UPDATE = 14  # deployments
    JOB_REGISTER_BATCH = 15  # several Job.Register requests in one entry (server/group_commit.py)
    PLAN_RESULTS = 16  # the plan applier's results, placements as a base + differences (fsm/plan.py):
    # its own number so a server that predates that form stops (FSM fatal) instead of skipping them
    ACL_POLICY_UPSERT = 17  # ACL.UpsertPolicies
    ACL_POLICY_DELETE = 18  # ACL.DeletePolicies
    ACL_TOKEN_UPSERT = 19  # ACL.UpsertTokens
    ACL_TOKEN_DELETE = 20  # ACL.DeleteTokens, and the leader's GC of expired tokens
    ACL_TOKEN_BOOTSTRAP = 21  # ACL.Bootstrap (refused by the FSM once done, unless the reset index matches)
    ACL_ROLE_UPSERT = 22  # ACL.UpsertRoles
    ACL_ROLE_DELETE = 23  # ACL.DeleteRoles
    ACL_ONE_TIME_TOKEN_UPSERT = 24  # ACL.UpsertOneTimeToken
    ACL_ONE_TIME_TOKEN_EXCHANGE = 25  # ACL.ExchangeOneTimeToken (deletes the one-time token)
    SNAPSHOT_RESTORE_CHUNK = 26  # one chunk of an operator snapshot restore; the last one swaps the state
    SNAPSHOT_RESTORE_ABORT = 27  # drop a partly staged snapshot restore (new leader)
    AUTOPILOT_SET_CONFIG = 28  # Operator.AutopilotSetConfiguration (check-and-set optional)
    # 29-39 are free; ROOT_KEY_UPSERT took 40 while the branches of this round were apart
    ROOT_KEY_UPSERT = 40  # Keyring.Rotate / the first variable write: a wrapped root key (server/keyring.py)
    # 41-49 are left for other features of this round; 50-59 for namespaces and node pools
    PERIODIC_LAUNCH = 47  # a periodic job's child + its eval + the parent's last launch (fsm/periodic.py)
    NAMESPACE_UPSERT = 50  # Namespace.UpsertNamespaces
    NAMESPACE_DELETE = 51  # Namespace.DeleteNamespaces (all or none; refused while in use)
    NODE_POOL_UPSERT = 52  # NodePool.UpsertNodePools
    NODE_POOL_DELETE = 53  # NodePool.DeleteNodePools (all or none; refused while in use)
    # 60-69: job versions and scaling (issue 13's plan and versions)
    JOB_STABILITY = 60  # Job.Stable: a version marked stable or not
    SCALING_EVENT_REGISTER = 61  # Job.Scale: a scaling event of a group
    # 70-79: service registrations (nomadd's own catalog, docs/services.md)
    SERVICE_REGISTRATION_UPSERT = 70  # ServiceRegistration.Upsert: one allocation's whole set
    SERVICE_REGISTRATION_DELETE = 71  # ServiceRegistration.DeleteByID

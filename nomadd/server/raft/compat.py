"""The parts of pysyncobj's insides that :mod:`nomadd.server.raft` relies on, checked at import.

pysyncobj is pinned exactly (``PYSYNCOBJ_VERSION``, pyproject.toml and requirements/) because the
glue touches attributes that are not its API: name-mangled fields, module globals it replaces
while a ``SyncObj`` is built, transport callbacks it overrides. :func:`check` runs once when the
package is imported and raises :class:`PysyncobjMismatchError` naming every missing piece and the
pinned version, so a different pysyncobj fails at start with that message instead of with an
``AttributeError`` (or silently, for a ``getattr`` with a default) deep in a tick thread.

Instance attributes that pysyncobj's constructors assign are checked in the constructors' code
(``co_names`` holds every attribute name a function stores or loads). pysyncobj's journal
interface is checked the other way round: every method its ``Journal`` declares must be one that
our journal (:mod:`.journal`) implements (:data:`JOURNAL_METHODS`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pysyncobj import journal as _journal_module
from pysyncobj import pickle as _pickle_module
from pysyncobj import pipe_notifier as _pipe_notifier_module
from pysyncobj import serializer as _serializer_module
from pysyncobj import syncobj as _syncobj_module
from pysyncobj import tcp_connection as _tcp_connection_module
from pysyncobj import transport as _transport_module
from pysyncobj import version as _version_module

__all__ = [
    "JOURNAL_METHODS",
    "PYSYNCOBJ_VERSION",
    "REQUIRED",
    "PysyncobjMismatchError",
    "check",
    "missing",
]

PYSYNCOBJ_VERSION = "0.3.17"  # keep in step with pyproject.toml and requirements/runtime.in

SyncObj = _syncobj_module.SyncObj
TCPTransport = _transport_module.TCPTransport
TcpConnection = _tcp_connection_module.TcpConnection
Journal = _journal_module.Journal
PipeNotifier = _pipe_notifier_module.PipeNotifier

# pysyncobj's journal interface, which raft.journal.DurableJournal implements: a method the
# installed pysyncobj's Journal has beyond these would be missing from ours
JOURNAL_METHODS = frozenset(
    {
        "add",
        "clear",
        "deleteEntriesFrom",
        "deleteEntriesTo",
        "_destroy",
        "setRaftCommitIndex",
        "getRaftCommitIndex",
        "setCurrentTerm",
        "getCurrentTerm",
        "getVotedForNodeId",
        "onOneSecondTimer",
        "__getitem__",
        "__len__",
    }
)

# (owner, attribute, where): "attr" = getattr(owner, attribute) must exist; "init" = the owner
# class's __init__ must assign it (an instance attribute, often name-mangled).
REQUIRED: tuple[tuple[Any, str, str], ...] = (
    # read on the tick thread by RaftNode.view() and used by Raft
    (SyncObj, "_getLeader", "attr"),
    (SyncObj, "_isLeader", "attr"),
    (SyncObj, "otherNodes", "attr"),
    (SyncObj, "raftLastApplied", "attr"),
    (SyncObj, "raftCommitIndex", "attr"),
    (SyncObj, "raftCurrentTerm", "attr"),
    (SyncObj, "hasQuorum", "attr"),
    (SyncObj, "isNodeConnected", "attr"),
    (SyncObj, "addOnTickCallback", "attr"),
    (SyncObj, "_getRaftLogSize", "attr"),
    (SyncObj, "_SyncObj__raftState", "init"),
    (SyncObj, "_SyncObj__noopIDx", "init"),
    (SyncObj, "_SyncObj__raftLog", "init"),
    (SyncObj, "_SyncObj__raftNextIndex", "init"),
    # RaftNode._onTick reads pending messages before an election or step-down pysyncobj would make
    (SyncObj, "_onTick", "attr"),
    (_syncobj_module, "monotonicTime", "attr"),  # its deadlines' clock
    (SyncObj, "_poller", "init"),
    (SyncObj, "_SyncObj__selfNode", "init"),
    (SyncObj, "_SyncObj__raftElectionDeadline", "init"),
    (SyncObj, "_SyncObj__needLoadDumpFile", "init"),
    (SyncObj, "_SyncObj__transport", "init"),
    (SyncObj, "_SyncObj__conf", "init"),
    (SyncObj, "_SyncObj__otherNodes", "init"),
    (SyncObj, "_SyncObj__lastResponseTime", "init"),
    # the pre-vote (raft.prevote) around pysyncobj's election
    (SyncObj, "_SyncObj__transferInProgress", "init"),
    (SyncObj, "_SyncObj__generateRaftTimeout", "attr"),
    (SyncObj, "_SyncObj__getCurrentLogIndex", "attr"),
    (SyncObj, "_SyncObj__getCurrentLogTerm", "attr"),
    (SyncObj, "_SyncObj__connectedToAnyone", "attr"),
    # the transport's compression, replaced at import (raft.wire_compress)
    (_tcp_connection_module, "zlib", "attr"),
    # module globals replaced while a SyncObj is built (glue.building_node)
    (_syncobj_module, "PipeNotifier", "attr"),
    (PipeNotifier, "notify", "attr"),
    (_syncobj_module, "createJournal", "attr"),
    (_syncobj_module, "createPoller", "attr"),
    (_syncobj_module, "getEncryptor", "attr"),
    (_serializer_module, "atomicReplace", "attr"),
    # the snapshot sender and receiver (glue.SnapshotSerializer)
    (_syncobj_module, "Serializer", "attr"),
    (_serializer_module.Serializer, "getTransmissionData", "attr"),
    (_serializer_module.Serializer, "setTransmissionData", "attr"),
    (_serializer_module.Serializer, "cancelTransmisstion", "attr"),
    (_pickle_module, "__protocol", "attr"),  # the pickle protocol of commands and messages
    # the transport subclass (glue.LoggingTransport)
    (TCPTransport, "_onMessageReceived", "attr"),
    (TCPTransport, "_onNewIncomingConnection", "attr"),
    (TCPTransport, "_onDisconnected", "attr"),
    (TCPTransport, "send", "attr"),
    (TCPTransport, "_syncObj", "init"),
    (TCPTransport, "_unknownConnections", "init"),
    (TcpConnection, "_TcpConnection__socket", "init"),
    # the read and write buffers' methods, replaced at import (raft.wire_buffers)
    (TcpConnection, "_TcpConnection__processRead", "attr"),
    (TcpConnection, "_TcpConnection__processParseMessage", "attr"),
    (TcpConnection, "_TcpConnection__processSend", "attr"),
    (TcpConnection, "_TcpConnection__readBuffer", "init"),
    (TcpConnection, "_TcpConnection__writeBuffer", "init"),
    (TcpConnection, "_TcpConnection__recvBufferSize", "init"),
    (TcpConnection, "setOnDisconnectedCallback", "attr"),
)


class PysyncobjMismatchError(ImportError):
    """The installed pysyncobj lacks something the glue uses (a version other than the pin)."""


def _owner_name(owner: Any) -> str:
    return owner.__name__ if isinstance(owner, ModuleType) else f"{owner.__module__}.{owner.__qualname__}"


def missing(required: tuple[tuple[Any, str, str], ...] = REQUIRED, journal: type = Journal) -> list[str]:
    """``owner.attribute`` for every entry of ``required`` the installed pysyncobj lacks, and
    every method of its journal interface that :data:`JOURNAL_METHODS` does not list."""
    out = [
        f"{_owner_name(journal)}.{name} (a journal method nomadd's DurableJournal lacks)"
        for name, value in sorted(vars(journal).items())
        if callable(value) and name not in JOURNAL_METHODS and name not in vars(object)
    ]
    for owner, name, where in required:
        if where == "init":
            code = getattr(getattr(owner, "__init__", None), "__code__", None)
            present = code is not None and name in code.co_names
        else:
            present = hasattr(owner, name)
        if not present:
            out.append(f"{_owner_name(owner)}.{name}")
    return out


def check() -> None:
    """Raise :class:`PysyncobjMismatchError` unless every :data:`REQUIRED` piece is there."""
    lacking = missing()
    if lacking:
        installed = getattr(_version_module, "VERSION", "unknown")
        raise PysyncobjMismatchError(
            f"pysyncobj {installed} lacks {', '.join(lacking)}: nomadd's raft glue needs "
            f"pysyncobj=={PYSYNCOBJ_VERSION} (pinned in pyproject.toml and requirements/)"
        )


check()

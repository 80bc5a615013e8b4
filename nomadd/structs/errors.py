"""The one exception hierarchy of nomadd.

::

    NomaddError                      anything nomadd raises on purpose
    ├── ConfigError                  a config file, flag or value is wrong (names file and key)
    ├── PermissionsError             a data dir has the wrong owner or mode (says how to fix it)
    ├── RaftStorageError             the Raft journal or its meta file cannot be read (names file, reason)
    ├── DriverError                  a task driver could not start, signal or stop a task
    └── RPCError (code)              an error that crosses the HTTP API or the internal RPC
        ├── ValidationError   400    the request is malformed or a field is invalid
        ├── PermissionDeniedError 403
        ├── NotFoundError     404    (UnknownJobError, UnknownNodeError, ... are subclasses)
        ├── MethodNotAllowedError 405
        ├── RequestTooLargeError 413  a body, job or Raft entry over its size limit (names it)
        ├── NotImplementedForModeError 501  the endpoint needs a server/client this agent is not
        ├── NoLeaderError     500    the cluster has no leader right now
        └── RaftApplyError    500    a Raft entry was not committed (timeout, leadership lost)

API-facing errors carry ``code``; the HTTP wrapper maps by that attribute and the internal RPC
sends ``{kind, code, message}`` and rebuilds the same class on the other side (``rpc_error_from``).
Never put a code in a message string or match on message text.
"""

from __future__ import annotations

__all__ = [
    "RPC_ERRORS",
    "ConfigError",
    "DriverError",
    "MethodNotAllowedError",
    "NoLeaderError",
    "NoRegionPathError",
    "NomaddError",
    "NotFoundError",
    "NotImplementedForModeError",
    "PermissionDeniedError",
    "PermissionsError",
    "RPCError",
    "RaftApplyError",
    "RaftStorageError",
    "RequestTooLargeError",
    "UnknownAllocError",
    "UnknownEvalError",
    "UnknownJobError",
    "UnknownNodeError",
    "UnreachableError",
    "ValidationError",
    "rpc_error_from",
]


class NomaddError(Exception):
    """Base of every error nomadd raises on purpose."""


class ConfigError(NomaddError):
    """A config file, a flag or a merged value is invalid.

    Raised while loading or validating configuration; the message names the file (or "flag")
    and the key, e.g. ``/etc/nomadd/server.toml: server.heartbeat_grace: invalid duration "x"``.
    Permission problems of the data dir are :class:`PermissionsError` instead.
    """


class PermissionsError(NomaddError):
    """A data directory is owned by the wrong user or is too open.

    The message says the path, what is wrong and how to fix it. Raised before anything listens.
    """


class RaftStorageError(NomaddError):
    """The Raft journal or its meta file cannot be used: the message names the file and why.

    Raised at start (the agent exits 1); a torn tail after a power cut is not one of these, it
    is cut back to the last whole entry with a warning.
    """


class DriverError(NomaddError):
    """A task driver failed to start, signal, recover or stop a task."""


class RPCError(NomaddError):
    """An error that crosses the HTTP API or the internal RPC, with an HTTP status ``code``."""

    code: int = 500

    def __init__(self, message: str = "", *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ValidationError(RPCError):
    """The request is malformed or one of its fields is invalid (400). Names the field."""

    code = 400


class PermissionDeniedError(RPCError):
    """The token does not allow the request (403)."""

    code = 403


class NotFoundError(RPCError):
    """The object the request names does not exist (404)."""

    code = 404


class UnknownJobError(NotFoundError):
    """No job with that ID (404)."""


class UnknownNodeError(NotFoundError):
    """No node with that ID (404)."""


class UnknownAllocError(NotFoundError):
    """No allocation with that ID (404)."""


class UnknownEvalError(NotFoundError):
    """No evaluation with that ID (404)."""


class MethodNotAllowedError(RPCError):
    """The path exists but not with this HTTP method (405)."""

    code = 405


class RequestTooLargeError(RPCError):
    """A request body, a job or the Raft entry it makes is over its size limit (413)."""

    code = 413


class NotImplementedForModeError(RPCError):
    """The endpoint needs a server (or a client) and this agent does not run one (501)."""

    code = 501


class NoLeaderError(RPCError):
    """The cluster has no leader right now (500, Nomad's ``No cluster leader``)."""

    code = 500

    def __init__(self, message: str = "No cluster leader", *, code: int | None = None) -> None:
        super().__init__(message, code=code)


class NoRegionPathError(RPCError):
    """A request names a region no reachable server belongs to (500, Nomad's
    ``structs.ErrNoRegionPath``, whose message the HTTP API returns as is)."""

    code = 500

    def __init__(self, message: str = "No path to region", *, code: int | None = None) -> None:
        super().__init__(message, code=code)


class UnreachableError(RPCError):
    """The internal RPC could not reach the agent (connect failed or timed out) (500); the
    caller may try another server."""

    code = 500


class RaftApplyError(RPCError):
    """A Raft entry was not committed: timeout, leadership lost, queue full (500).

    A missing leader is :class:`NoLeaderError` instead. The message starts with the class name,
    so the HTTP body of a write that failed this way (here or on the leader it was forwarded
    to) says what failed; the prefix is added once, also when the RPC rebuilds the error.
    """

    code = 500

    def __init__(self, message: str = "raft apply failed", *, code: int | None = None) -> None:
        prefix = f"{type(self).__name__}: "
        super().__init__(message if message.startswith(prefix) else prefix + message, code=code)


RPC_ERRORS: dict[str, type[RPCError]] = {
    cls.__name__: cls
    for cls in (
        RPCError,
        ValidationError,
        PermissionDeniedError,
        NotFoundError,
        UnknownJobError,
        UnknownNodeError,
        UnknownAllocError,
        UnknownEvalError,
        MethodNotAllowedError,
        RequestTooLargeError,
        NotImplementedForModeError,
        NoLeaderError,
        NoRegionPathError,
        RaftApplyError,
    )
}


def rpc_error_from(kind: str, code: int, message: str) -> RPCError:
    """Rebuild an error sent over the internal RPC as ``{kind, code, message}``."""
    cls = RPC_ERRORS.get(kind, RPCError)
    return cls(message, code=code)

"""The client's sqlite state db, ``<state_dir>/state.db`` (docs/architecture.md §State).

Holds the node identity (ID + secret, so a restarted client is the same node), the allocations
the client runs, each task's state, the last launch of each task and its driver handle (so a
restarted client adopts its tasks with ``adopt_task``). Every method is blocking: call them
through ``asyncio.to_thread`` or the client's one state-writer thread. One connection, guarded by
a lock; each write is its own transaction.

Durability: WAL with ``synchronous=FULL``, so a write is on disk (the WAL fsync'ed) when its
commit returns; kill -9 loses nothing committed at any setting, a power cut loses what was not
fsync'ed. The writes that are relied on, and so must be committed (and durable) first:

* the node identity, before the node registers with it (else the host comes back as a new node
  and the servers keep a ghost);
* a task's launch ID (:meth:`put_task_launch`), before its executor is spawned: a restarted
  client looks for the executors of that launch even when the agent died before it stored the
  task's handle;
* the task states and allocations, before their status is sent to the servers (the client waits
  for its queued writes before each ``Node.UpdateAlloc``): a status the servers were told, e.g.
  that a batch task completed, is never forgotten by the client, which would then run it again.

Task handles are written after the start and relied on by nothing that the launch record does
not also give.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["STATE_DB", "ClientState", "NodeIdentity"]

STATE_DB = "state.db"
SCHEMA_VERSION = 2  # 2: task_launches

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS allocs (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS task_handles (
    alloc_id TEXT NOT NULL, task TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (alloc_id, task)
);
CREATE TABLE IF NOT EXISTS task_states (
    alloc_id TEXT NOT NULL, task TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (alloc_id, task)
);
CREATE TABLE IF NOT EXISTS task_launches (
    alloc_id TEXT NOT NULL, task TEXT NOT NULL, launch_id TEXT NOT NULL,
    PRIMARY KEY (alloc_id, task)
);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeIdentity:
    node_id: str
    secret_id: str


class ClientState:
    """Open (creating 0700 dir and 0600 file) the state db under ``state_dir``."""

    def __init__(self, state_dir: str) -> None:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self.path = os.path.join(state_dir, STATE_DB)
        self._lock = threading.Lock()
        fresh = not os.path.exists(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if fresh:
            os.chmod(self.path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- meta ---------------------------------------------------------------------------
    def _get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def node_identity(self) -> NodeIdentity:
        """The stored node ID and secret; made (uuid4) and stored on first use."""
        node_id, secret = self._get_meta("node_id"), self._get_meta("secret_id")
        if node_id and secret:
            return NodeIdentity(node_id=node_id, secret_id=secret)
        ident = NodeIdentity(node_id=str(uuid.uuid4()), secret_id=str(uuid.uuid4()))
        self._set_meta("node_id", ident.node_id)
        self._set_meta("secret_id", ident.secret_id)
        logger.info("generated node identity node_id=%s", ident.node_id)
        return ident

    # ---- allocations and task handles ----------------------------------------------------
    def put_alloc(self, alloc_id: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO allocs (id, data) VALUES (?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (alloc_id, json.dumps(data)),
            )

    def allocs(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT id, data FROM allocs").fetchall()
        return {str(r[0]): json.loads(r[1]) for r in rows}

    def delete_alloc(self, alloc_id: str) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for table, col in (
                    ("allocs", "id"),
                    ("task_handles", "alloc_id"),
                    ("task_states", "alloc_id"),
                    ("task_launches", "alloc_id"),
                ):
                    self._db.execute(f"DELETE FROM {table} WHERE {col} = ?", (alloc_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def put_task_handle(self, alloc_id: str, task: str, handle: Mapping[str, Any] | None) -> None:
        with self._lock:
            if handle is None:
                self._db.execute("DELETE FROM task_handles WHERE alloc_id = ? AND task = ?", (alloc_id, task))
                return
            self._db.execute(
                "INSERT INTO task_handles (alloc_id, task, data) VALUES (?, ?, ?) "
                "ON CONFLICT(alloc_id, task) DO UPDATE SET data = excluded.data",
                (alloc_id, task, json.dumps(handle)),
            )

    def task_handles(self, alloc_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT task, data FROM task_handles WHERE alloc_id = ?", (alloc_id,)
            ).fetchall()
        return {str(r[0]): json.loads(r[1]) for r in rows}

    def put_task_state(self, alloc_id: str, task: str, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO task_states (alloc_id, task, data) VALUES (?, ?, ?) "
                "ON CONFLICT(alloc_id, task) DO UPDATE SET data = excluded.data",
                (alloc_id, task, json.dumps(state)),
            )

    def task_states(self, alloc_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT task, data FROM task_states WHERE alloc_id = ?", (alloc_id,)
            ).fetchall()
        return {str(r[0]): json.loads(r[1]) for r in rows}

    def put_task_launch(self, alloc_id: str, task: str, launch_id: str) -> None:
        """Record the launch about to start (replaces the task's previous one)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO task_launches (alloc_id, task, launch_id) VALUES (?, ?, ?) "
                "ON CONFLICT(alloc_id, task) DO UPDATE SET launch_id = excluded.launch_id",
                (alloc_id, task, launch_id),
            )

    def task_launches(self, alloc_id: str) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT task, launch_id FROM task_launches WHERE alloc_id = ?", (alloc_id,)
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

"""The agent: owns the HTTP listener, the Server (when -server) and the Client (when -client).

``start`` binds the HTTP port first, then starts the server and the client; ``leave`` runs the
client's leave, then the server's (Nomad's order), bounded by ``LEAVE_TIMEOUT_S``; ``shutdown``
stops everything, idempotent. ``reload`` hands a new config to the parts that can change live.

The server's and the client's background tasks report a vital task that died to :meth:`_on_fatal`
(see :mod:`nomadd.helper.supervisor`); :meth:`wait_fatal` then tells the command to stop the agent with
exit status 70 (EX_SOFTWARE), so systemd restarts it instead of leaving it half alive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from nomadd.agent.config import AgentConfig
from nomadd.client.client import Client
from nomadd.client.drain import drain_wait_s
from nomadd.helper.supervisor import EX_SOFTWARE, Supervisor
from nomadd.rpc.tls import AgentTLS
from nomadd.server.acl.resolver import ACLResolver, Resolved
from nomadd.server.server import Server
from nomadd.structs.errors import ConfigError
from nomadd.structs.requests.acl import ACL_RESOLVE_TOKEN, ACLGetRequest

logger = logging.getLogger(__name__)

__all__ = ["LEAVE_TIMEOUT_S", "Agent", "Listener"]

# Nomad's gracefulTimeout: how long a graceful leave may take before the agent gives up (exit 1).
LEAVE_TIMEOUT_S = 5.0


class Listener(Protocol):
    """The HTTP listener the agent owns (``agent.http.server.HTTPServer``)."""

    port: int

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


class Agent:
    """``listener`` builds the HTTP listener for this agent; the command passes
    ``HTTPServer``, so this module does not import the HTTP layer (which imports it)."""

    def __init__(self, config: AgentConfig, listener: Callable[[Agent], Listener]) -> None:
        self.config = config
        self.started_at = time.monotonic()
        # One set of TLS contexts for the listener and every outgoing call; SIGHUP reloads it.
        self.tls: AgentTLS | None = AgentTLS(config.tls) if config.tls.enabled else None
        self.http = listener(self)
        self._crashed = asyncio.Event()
        self._crash_reason = ""
        # The agent's own tasks (the command's systemd watchdog); the command closes it last,
        # after shutdown, so the watchdog keeps pinging while the agent stops.
        self.tasks = Supervisor("agent", on_fatal=self._on_fatal)
        fatal = self._on_fatal
        tls = self.tls
        self.server: Server | None = (
            Server(config.server, on_fatal=fatal, tls=tls) if config.server.enabled else None
        )
        self.client: Client | None = (
            Client(config.client, on_fatal=fatal, tls=tls) if config.client.enabled else None
        )
        # The one resolver every HTTP check uses: the server's own (its state), or on a client-only
        # agent one that asks the servers (ACL.ResolveToken) and caches for acl.token_ttl.
        self.acl: ACLResolver = (
            self.server.ctx.acl
            if self.server is not None
            else ACLResolver(config.acl, self._resolve_remote, cache_tokens=True)
        )
        # Set by the command so /v1/agent/reload can trigger the same path as SIGHUP.
        self.reload_hook: Callable[[], Awaitable[None]] | None = None
        self._shut_down = False

    async def _resolve_remote(self, secret: str) -> Resolved:
        if self.client is None:
            return Resolved(token=None, policies=())
        reply = await self.client.call(ACL_RESOLVE_TOKEN, ACLGetRequest(key=secret, auth_token=secret))
        return Resolved(token=reply.token, policies=reply.policies)

    async def start(self) -> None:
        await self.http.start()
        if self.server is not None:
            await self.server.start()
        if self.client is not None:
            await self.client.start()

    def leave_timeout_s(self) -> float | None:
        """How long a graceful leave may take: ``LEAVE_TIMEOUT_S`` plus the client's
        ``drain_on_shutdown`` wait (None: a drain without deadline, until it completes)."""
        drain = drain_wait_s(self.client) if self.client is not None else 0.0
        return None if drain is None else LEAVE_TIMEOUT_S + drain

    async def leave(self) -> None:
        """Graceful leave: client first (its node goes down, work moves), then the server."""
        if self.client is not None:
            try:
                await self.client.leave()
            except Exception:
                logger.exception("client leave failed")
        if self.server is not None:
            try:
                await self.server.leave()
            except Exception:
                logger.exception("server leave failed")

    async def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        logger.info("requesting shutdown")
        if self.client is not None:
            logger.info("client: shutting down")
            await self.client.shutdown()
        if self.server is not None:
            logger.info("shutting down server")
            await self.server.shutdown()
        await self.http.shutdown()
        logger.info("shutdown complete")

    async def reload(self, config: AgentConfig) -> None:
        """Apply a reloaded config. Certificates are loaded first: when the new files are
        unusable, a ``ConfigError`` is raised and nothing changes."""
        if self.tls is not None or config.tls.enabled:
            if self.tls is None:
                raise ConfigError("tls: turning TLS on or off needs a restart")
            await asyncio.to_thread(self.tls.reload, config.tls)
            logger.info("tls certificates reloaded cert_file=%s", config.tls.cert_file)
        self.config = config
        if self.server is not None:
            await self.server.reload(config.server)
        if self.client is not None:
            await self.client.reload(config.client)

    def _on_fatal(self, reason: str) -> None:
        """A vital background task died (its traceback is logged already); the first reason wins."""
        if self._crashed.is_set():
            return
        logger.critical("vital task failed, stopping the agent exit_code=%d reason=%s", EX_SOFTWARE, reason)
        self._crash_reason = reason
        self._crashed.set()

    async def wait_fatal(self) -> tuple[str, int]:
        """Wait until the agent cannot go on; returns why and the exit status.

        A vital task that died: exit 70. A component that gave up (e.g. retry_join exhausted,
        signalled with a ``failed`` asyncio.Event and a ``fatal_error`` message): exit 1, as Nomad.
        """
        events: list[tuple[object, asyncio.Event]] = [(self, self._crashed)]
        events += [
            (c, ev)
            for c in (self.server, self.client)
            if c is not None and isinstance(ev := getattr(c, "failed", None), asyncio.Event)
        ]
        waiters = [asyncio.create_task(ev.wait()) for _, ev in events]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if self._crashed.is_set():
            return self._crash_reason, EX_SOFTWARE
        for component, ev in events:
            if ev.is_set():
                return str(getattr(component, "fatal_error", "") or "agent component failed"), 1
        return "agent component failed", 1

    async def request_reload(self) -> None:
        if self.reload_hook is None:
            raise RuntimeError("reload is not available")
        await self.reload_hook()

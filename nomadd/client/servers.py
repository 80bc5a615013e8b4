"""The client's server list (Nomad's ``client/servers`` manager + ``consulDiscovery``).

The list starts from configuration: ``client.servers`` and ``client.server_join.retry_join``
entries (``host[:port]`` with default port 4646, ``dns+srv://...``, ``mdns://...``), resolved with
:mod:`nomadd.discovery` (``port_kind="http"``); an agent that also runs a server uses its own
HTTP address when nothing is configured. Every register/heartbeat reply then replaces the list
with the servers the cluster reports. :meth:`ServerList.rpc` tries the servers in order: a
server that cannot be reached (or has no leader) moves to the back and the next one is tried;
when all fail the configured entries are resolved again before the error is raised.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from nomadd.discovery import DiscoveryError, Resolver
from nomadd.rpc import RPCClient
from nomadd.structs.errors import ConfigError, NoLeaderError, RPCError, UnreachableError
from nomadd.structs.requests import Method, Rep, Req
from nomadd.structs.requests.node import NodeServerInfo

T = TypeVar("T")

logger = logging.getLogger(__name__)

__all__ = ["NoServersError", "ServerList"]


class NoServersError(RPCError):
    """No server address is known (none configured, discovery found none)."""

    code = 500


def _transient(err: RPCError) -> bool:
    """Errors after which another server may succeed: transport failures (a plain RPCError, or
    UnreachableError when the connection could not even be made) and no leader."""
    return type(err) is RPCError or isinstance(err, UnreachableError | NoLeaderError)


class ServerList:
    def __init__(
        self,
        entries: Sequence[str],
        *,
        resolver: Resolver,
        rpc: RPCClient,
        fallback: str = "",
        rng: random.Random | None = None,
    ) -> None:
        self.entries = tuple(entries)
        self._resolver = resolver
        self._rpc = rpc
        self._fallback = fallback
        self._rng = rng or random.Random()
        self._servers: list[str] = []
        self.last_error = ""

    def servers(self) -> list[str]:
        return list(self._servers)

    def set_servers(self, addrs: Iterable[str]) -> None:
        """Replace the list (shuffled, as Nomad does, so clients spread over the servers)
        unless it holds the same addresses already (keep the order that works)."""
        new = [a for a in dict.fromkeys(addrs) if a]
        if not new or set(new) == set(self._servers):
            return
        self._rng.shuffle(new)
        logger.debug("server list updated servers=%s", ",".join(new))
        self._servers = new

    def set_from_reply(self, servers: Iterable[NodeServerInfo]) -> None:
        """Take the servers a register/heartbeat reply lists (an empty list changes nothing)."""
        self.set_servers(s.rpc_advertise_addr for s in servers)

    def _demote(self, addr: str) -> None:
        if addr in self._servers and self._servers[-1] != addr:
            self._servers.remove(addr)
            self._servers.append(addr)

    async def discover(self) -> list[str]:
        """Resolve the configured entries now and use what they give (keeps the old list
        when discovery finds nothing)."""
        found: list[str] = []
        if self.entries:
            try:
                found = await self._resolver.resolve_all(self.entries, port_kind="http")
            except (DiscoveryError, ConfigError) as err:
                self.last_error = str(err)
                logger.warning("server discovery failed err=%s", err)
        if not found and self._fallback:
            found = [self._fallback]
        if found:
            self._servers = list(dict.fromkeys(found))
        return self.servers()

    async def call(self, method: Method[Req, Rep], request: Req, *, timeout: float = 10.0) -> Rep:
        """Call ``method`` on the first server that answers; remote rule errors are raised at
        once, transport errors and "no leader" move on to the next server."""

        async def one(addr: str) -> Rep:
            return await self._rpc.call(addr, method, request, timeout=timeout)

        reply: Rep = await self._first_answer(method.name, one)
        return reply

    async def _first_answer(self, method: str, one: Callable[[str], Awaitable[T]]) -> T:
        if not self._servers:
            await self.discover()
        if not self._servers:
            raise NoServersError("no known servers")
        last: RPCError | None = None
        for attempt in range(2):
            for addr in list(self._servers):
                try:
                    return await one(addr)
                except RPCError as err:
                    if not _transient(err):
                        raise
                    logger.debug("rpc to server failed method=%s server=%s err=%s", method, addr, err)
                    self.last_error = str(err)
                    last = err
                    self._demote(addr)
            if attempt == 0 and self.entries:
                before = set(self._servers)
                await self.discover()
                if set(self._servers) == before:
                    break
        assert last is not None
        raise last

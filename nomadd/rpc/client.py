"""Caller side of the internal RPC: one aiohttp session, msgpack bodies, typed errors back."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from nomadd.rpc.auth import Credentials
from nomadd.rpc.tls import AgentTLS
from nomadd.rpc.wire import MSGPACK_CONTENT_TYPE, encode_request, parse_reply
from nomadd.structs.errors import RPCError, UnreachableError
from nomadd.structs.requests import Method, Rep, Req

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TIMEOUT_S", "RPCClient"]

DEFAULT_TIMEOUT_S = 10.0  # Nomad's RPC hold timeout order of magnitude; blocking calls pass more


class RPCClient:
    """``await call(http_addr, METHOD, request) -> reply``; create and close on the agent's loop.

    With the agent's TLS (``tls.rpc``) calls go over https, presenting the agent's certificate,
    and check the server's certificate against the CA (and its name, ``server.<region>.nomad``,
    with ``verify_server_hostname``). ``credentials`` gives the headers that authenticate each
    call (``nomadd.rpc.auth``: a server's signature or a node's secret); without it calls are
    anonymous and servers refuse them.
    """

    def __init__(self, tls: AgentTLS | None = None, *, credentials: Credentials | None = None) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._tls = tls if tls is not None and tls.enabled else None
        self._scheme = "https" if self._tls is not None else "http"
        self._credentials = credentials

    def _headers(self, method: str, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": MSGPACK_CONTENT_TYPE}
        if self._credentials is not None:
            headers.update(self._credentials(method, body))
        return headers

    def _ssl_kwargs(self, region: str = "") -> dict[str, Any]:
        if self._tls is None:
            return {}
        out: dict[str, Any] = {"ssl": self._tls.outgoing}
        name = self._tls.server_name_of(region) if region else self._tls.server_name
        if name is not None:
            out["server_hostname"] = name
        return out

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # no pool limit: forwarded blocking queries hold a connection for up to 5 min,
            # and a capped pool would queue every other call behind them
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))
        return self._session

    async def call(
        self,
        addr: str,
        method: Method[Req, Rep],
        request: Req,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        connect_timeout: float | None = None,
        region: str = "",
    ) -> Rep:
        """Call ``method`` on the agent whose HTTP address is ``addr`` (``host:port``).

        Raises the remote :class:`RPCError` subclass, :class:`UnreachableError` (500) when
        the connection cannot be made within ``connect_timeout`` (default: ``timeout``), or
        ``RPCError`` (500) when the call fails later or the answer is not an RPC reply. With
        ``region`` (a server of another region) its certificate must name that region.
        """
        url = f"{self._scheme}://{addr}/v1/internal/{method.name}"
        body = encode_request(request)
        headers = self._headers(method.name, body)
        try:
            session = self._get_session()
            async with session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout),
                **self._ssl_kwargs(region),
            ) as resp:
                body = await resp.read()
                if resp.content_type != MSGPACK_CONTENT_TYPE:
                    text = body.decode(errors="replace").strip()
                    raise RPCError(f"rpc {method} to {addr}: {text}", code=resp.status)
        except (aiohttp.ClientConnectionError, aiohttp.ServerTimeoutError) as err:
            if isinstance(err, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
                raise UnreachableError(f"rpc {method} to {addr} failed: {err!r}") from err
            raise RPCError(f"rpc {method} to {addr} failed: {err!r}") from err
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise RPCError(f"rpc {method} to {addr} failed: {err!r}") from err
        return parse_reply(method.reply, body)

    async def check_server(self, addr: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> str:
        """Why the agent at ``addr`` may not act as a server of this region ("" when it may).

        Without TLS nothing is checked. With ``tls.rpc`` a TLS handshake is made with the
        outgoing RPC's checks: the certificate must come from the CA and, with
        ``verify_server_hostname``, name ``server.<region>.nomad`` — a client certificate on
        an agent that joins as a server fails here (Nomad refuses it on its RPC port). Raises
        ``RPCError`` when the agent cannot be reached (nothing is known about it yet).
        """
        if self._tls is None:
            return ""
        try:
            session = self._get_session()
            async with session.get(
                f"https://{addr}/v1/status/leader",
                timeout=aiohttp.ClientTimeout(total=timeout),
                **self._ssl_kwargs(),
            ) as resp:
                await resp.read()
        except aiohttp.ClientSSLError as err:
            return f"TLS handshake with {addr} failed: {err}"
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise RPCError(f"cannot reach {addr}: {err!r}") from err
        return ""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            await asyncio.sleep(0)  # let aiohttp close its transports

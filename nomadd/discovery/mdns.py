"""mDNS announcement and browsing of servers with zeroconf (docs/contributing/dependencies.md §zeroconf).

Every server announces ``<name>-<region>._nomadd._tcp.local.`` with TXT properties ``region``,
``dc``, ``role``, ``name`` and one property per port (``http``, ``raft``, ``serf``); the SRV port
of the service is the HTTP port. A browser collects announcements for a bounded window and keeps
the servers of one region (and datacenter, when asked), taking the port the caller needs.

mDNS is IPv4 only here, stays on one L2 segment and is not authenticated: results are hints
that the Raft password / gossip keys still have to confirm.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from zeroconf import DNSQuestionType, InterfaceChoice, IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from nomadd.discovery.entry import MDNS_WINDOW_S, PORT_KINDS, DiscoveryError, PortKind, join_host_port
from nomadd.structs.errors import ConfigError

__all__ = ["SERVICE_TYPE", "MdnsAnnouncer", "browse_servers"]

logger = logging.getLogger(__name__)

SERVICE_TYPE: Final = "_nomadd._tcp.local."
# The first answers arrive after ~0.7-1.0 s (measured: docs/contributing/dependencies.md
# §zeroconf); 2 s catches a whole LAN.
# Per-service info request; answers are normally already cached from the browse replies.
MDNS_REQUEST_TIMEOUT_MS: Final = 1000
_LABEL_BAD_RE: Final = re.compile(r"[^A-Za-z0-9-]+")
_MAX_LABEL: Final = 63


def _interfaces(interfaces: Sequence[str] | None) -> Any:
    return InterfaceChoice.All if not interfaces else list(interfaces)


class MdnsAnnouncer:
    """Announces one server on the local link until :meth:`stop`.

    ``address`` is the IPv4 address peers should use (the advertise address); ``ports`` maps
    ``http``, ``raft`` and ``serf`` to port numbers. ``interfaces`` are the local IPv4 addresses
    whose links carry the announcement; default: the advertise address itself when it is local,
    else every interface.
    """

    def __init__(
        self,
        name: str,
        region: str,
        datacenter: str,
        role: str,
        address: str,
        ports: Mapping[str, int],
        *,
        interfaces: Sequence[str] | None = None,
    ) -> None:
        try:
            if ipaddress.ip_address(address).version != 4:
                raise ValueError(address)
        except ValueError:
            raise ConfigError(f"mdns: announce address {address!r} is not an IPv4 address") from None
        if ipaddress.ip_address(address).is_unspecified:
            raise ConfigError("mdns: cannot announce the unspecified address 0.0.0.0")
        missing = [kind for kind in PORT_KINDS if kind not in ports]
        if missing:
            raise ConfigError(f"mdns: announcer needs ports {', '.join(missing)}")
        label = _LABEL_BAD_RE.sub("-", f"{name}-{region}").strip("-")[:_MAX_LABEL] or "nomadd"
        self.name = name
        self.address = address
        self._interfaces = list(interfaces) if interfaces else None
        properties: dict[str, str] = {
            "region": region,
            "dc": datacenter,
            "role": role,
            "name": name,
        }
        properties.update({kind: str(ports[kind]) for kind in PORT_KINDS})
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{label}.{SERVICE_TYPE}",
            port=int(ports["http"]),
            properties=properties,
            server=f"{label}.local.",
            parsed_addresses=[address],
        )
        self._zc: AsyncZeroconf | None = None

    @property
    def service_name(self) -> str:
        """The full mDNS instance name (``<label>._nomadd._tcp.local.``)."""
        return self._info.name

    async def start(self) -> None:
        """Probe and announce (takes ~1.7 s); idempotent."""
        if self._zc is not None:
            return
        zc = self._open()
        try:
            await (await zc.async_register_service(self._info, allow_name_change=True))
        except BaseException:
            await zc.async_close()
            raise
        self._zc = zc
        logger.info(
            "mdns announce started name=%s address=%s service=%s",
            self.name,
            self.address,
            self._info.name,
        )

    async def stop(self) -> None:
        """Send goodbye packets and close; idempotent. Call it on leave and on shutdown."""
        zc, self._zc = self._zc, None
        if zc is None:
            return
        try:
            await (await zc.async_unregister_service(self._info))
        finally:
            await zc.async_close()
        logger.info("mdns announce stopped name=%s", self.name)

    def _open(self) -> AsyncZeroconf:
        interfaces = self._interfaces or [self.address]
        try:
            return AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        except OSError as err:
            if self._interfaces:
                raise DiscoveryError(f"mdns: cannot use interfaces {interfaces}: {err}") from err
            logger.warning(
                "mdns address not local, announcing on every interface address=%s error=%s",
                self.address,
                err,
            )
            return AsyncZeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)


async def browse_servers(
    *,
    region: str,
    datacenter: str | None = None,
    port_kind: PortKind = "serf",
    window: float = MDNS_WINDOW_S,
    interfaces: Sequence[str] | None = None,
) -> list[str]:
    """Browse ``_nomadd._tcp.local.`` for ``window`` seconds; ``host:port`` of matching servers.

    Keeps services with ``role=server`` of ``region`` (and ``datacenter`` when given), sorted by
    service name. Raises DiscoveryError when none was found.
    """
    try:
        zc = AsyncZeroconf(interfaces=_interfaces(interfaces), ip_version=IPVersion.V4Only)
    except OSError as err:
        raise DiscoveryError(f"mdns: cannot open multicast sockets: {err}") from err
    infos: dict[str, AsyncServiceInfo] = {}
    try:
        async with asyncio.TaskGroup() as tg:

            async def request(name: str) -> None:
                info = AsyncServiceInfo(SERVICE_TYPE, name)
                if await info.async_request(
                    zc.zeroconf, MDNS_REQUEST_TIMEOUT_MS, question_type=DNSQuestionType.QM
                ):
                    infos[name] = info

            def on_change(
                zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
            ) -> None:
                # Runs in the event loop: never block here, schedule the info request.
                if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
                    tg.create_task(request(name))
                elif state_change is ServiceStateChange.Removed:
                    infos.pop(name, None)

            # QM (multicast) questions, not zeroconf's default QU first query: a unicast answer
            # to port 5353 reaches only one of the sockets that share it on this host (an
            # agent's own announcer, another browser), a multicast answer reaches them all.
            browser = AsyncServiceBrowser(
                zc.zeroconf,
                [SERVICE_TYPE],
                handlers=[on_change],
                question_type=DNSQuestionType.QM,
            )
            try:
                await asyncio.sleep(window)
            finally:
                await browser.async_cancel()
    finally:
        await zc.async_close()
    out: list[str] = []
    ignored = 0
    for name in sorted(infos):
        props = infos[name].decoded_properties
        wanted = props.get("role") == "server" and props.get("region") == region
        if wanted and datacenter is not None:
            wanted = props.get("dc") == datacenter
        port = _port(infos[name], props, port_kind)
        if not wanted or port is None:
            ignored += 1
            logger.debug(
                "mdns service ignored name=%s region=%s dc=%s role=%s",
                name,
                props.get("region"),
                props.get("dc"),
                props.get("role"),
            )
            continue
        for address in infos[name].parsed_addresses(IPVersion.V4Only):
            hostport = join_host_port(address, port)
            if hostport not in out:
                out.append(hostport)
    if not out:
        where = f"region={region}" + (f" dc={datacenter}" if datacenter else "")
        raise DiscoveryError(
            f"mdns: no server of {where} answered within {window:g}s ({ignored} other service(s) ignored)"
        )
    return out


def _port(info: AsyncServiceInfo, props: Mapping[str, str | None], kind: PortKind) -> int | None:
    value = props.get(kind)
    if value is not None and value.isdigit() and 0 < int(value) < 65536:
        return int(value)
    if kind == "http" and info.port:
        return int(info.port)
    return None

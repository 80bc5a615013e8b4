"""Federation (Nomad's multi-region model, docs/runbooks/federate-regions.md).

The servers of every region share one gossip pool; each member carries its ``region`` tag, so a
server knows, from gossip alone, the regions there are and the servers of each (Nomad's
``peers`` map kept by ``nomad/serf.go``). :class:`Regions` is that view:

* :meth:`Regions.known` — every region seen (ours included), sorted (``/v1/regions``).
* :meth:`Regions.candidates` — the HTTP addresses of the alive servers of a region, shuffled
  (Nomad's ``forwardRegion`` picks a random server; that server forwards to its own leader).
* :meth:`Regions.forward` — run an RPC in another region with the caller's envelope (token
  included), trying up to :data:`FORWARD_ATTEMPTS` servers that cannot be reached, each with a
  :data:`FORWARD_CONNECT_TIMEOUT_S` connect timeout; none → :class:`NoRegionPathError`
  ("No path to region", as Nomad's ``structs.ErrNoRegionPath``).

Raft membership is never taken from here: ``membership.region_servers`` keeps only our region.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from nomadd.gossip import Member, MemberStatus
from nomadd.rpc import RPCClient
from nomadd.server.membership import ServerInfo, parse_server
from nomadd.structs.errors import NoRegionPathError, UnreachableError
from nomadd.structs.requests import Method, Rep, Req

logger = logging.getLogger(__name__)

__all__ = ["FORWARD_ATTEMPTS", "FORWARD_CONNECT_TIMEOUT_S", "Regions", "forward_timeout"]

FORWARD_ATTEMPTS = 3  # servers tried when they cannot be reached (each bounded by the below)
FORWARD_CONNECT_TIMEOUT_S = 1.0


def forward_timeout(req: Req) -> float:
    """How long a forwarded call may take: a blocking query's wait plus Nomad's jitter margin."""
    wait = req.max_query_time_s if req.min_query_index > 0 else 0.0
    return 10.0 + wait * 17 / 16


class Regions:
    def __init__(self, *, region: str, members: Callable[[], list[Member]], rpc: RPCClient) -> None:
        self.region = region
        self._members = members
        self._rpc = rpc

    def servers(self) -> list[ServerInfo]:
        """Every nomadd server in the pool, of every region."""
        out = (parse_server(m) for m in self._members())
        return sorted((s for s in out if s is not None), key=lambda s: (s.region, s.name))

    def known(self) -> list[str]:
        return sorted({s.region for s in self.servers() if s.region} | {self.region})

    def candidates(self, region: str) -> list[str]:
        """The HTTP addresses of ``region``'s alive servers in random order (never empty)."""
        addrs = [
            s.http_addr
            for s in self.servers()
            if s.region == region and s.status == MemberStatus.ALIVE and s.http_addr
        ]
        if not addrs:
            logger.debug("no server known for region region=%s", region)
            if all(s.region != region for s in self.servers()):
                # a region no server has ever been seen in: the caller named it wrong (Nomad
                # answers 500 either way; a request alone must not cause a 5xx here)
                raise NoRegionPathError(code=400)
            raise NoRegionPathError()
        random.shuffle(addrs)
        return addrs

    async def forward(self, method: Method[Req, Rep], req: Req) -> Rep:
        """Run ``method`` on a server of ``req.region`` (which forwards to its leader)."""
        for addr in self.candidates(req.region)[:FORWARD_ATTEMPTS]:
            try:
                return await self._rpc.call(
                    addr,
                    method,
                    req,
                    timeout=forward_timeout(req),
                    connect_timeout=FORWARD_CONNECT_TIMEOUT_S,
                    region=req.region,
                )
            except UnreachableError as err:
                logger.debug(  # the caller reports the outcome (No path to region) once
                    "region forward failed, trying another server region=%s addr=%s err=%s",
                    req.region,
                    addr,
                    err,
                )
        raise NoRegionPathError()

"""``client.drain_on_shutdown`` (Nomad's client DrainSelf): drain this node before a graceful stop.

On a graceful leave (``leave_on_terminate``/``leave_on_interrupt``) the client, still
heartbeating, asks the servers to drain its own node (``Node.UpdateDrain`` with its SecretID as
the token, meta ``message = shutting down``; ``force`` is a deadline of -1), then reads its node
(``Node.GetNode``) every ``POLL_S`` until the leader's drainer has completed the drain — every
allocation moved, ``migrate`` by ``migrate`` — or the deadline plus ``EXTRA_WAIT_S`` passed (the
server records a deadlined drain itself; the extra seconds let it). Only then does the leave go
on and the agent stop. Server errors are retried for ``ERROR_GIVE_UP_S`` before the client gives
up and stops anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from nomadd.client.config import ClientConfig
from nomadd.client.servers import ServerList
from nomadd.structs.errors import RPCError
from nomadd.structs.node import DrainStrategy, Node
from nomadd.structs.requests.node import (
    NODE_GET,
    NODE_UPDATE_DRAIN,
    NodeSpecificRequest,
    NodeUpdateDrainRequest,
)
from nomadd.structs.timeutil import NS_PER_S


class Client(Protocol):
    """What draining needs of :class:`nomadd.client.client.Client` (a Protocol: no import cycle)."""

    config: ClientConfig
    node: Node | None
    registered: bool
    server_list: ServerList


logger = logging.getLogger(__name__)

__all__ = ["ERROR_GIVE_UP_S", "EXTRA_WAIT_S", "POLL_S", "drain_self", "drain_wait_s"]

POLL_S = 1.0
EXTRA_WAIT_S = 5.0  # Nomad's: past the deadline, so the server can record the deadlined drain
ERROR_GIVE_UP_S = 30.0


def drain_wait_s(client: Client) -> float | None:
    """How long :func:`drain_self` may take at most: None when it does not drain (0.0) or has no
    deadline (None: until the drain completes)."""
    spec = client.config.drain_on_shutdown
    if spec is None:
        return 0.0
    if spec.force:
        return EXTRA_WAIT_S
    return spec.deadline + EXTRA_WAIT_S if spec.deadline > 0 else None


async def drain_self(client: Client) -> bool:
    """Drain this node and wait for the drain to complete; False if it did not in time."""
    spec = client.config.drain_on_shutdown
    node = client.node
    if spec is None or node is None or not client.registered:
        return True
    deadline_ns = -1 if spec.force else int(spec.deadline * NS_PER_S)
    strategy = DrainStrategy(deadline=deadline_ns, ignore_system_jobs=spec.ignore_system_jobs)
    req = NodeUpdateDrainRequest(
        node_id=node.id, drain_strategy=strategy, meta={"message": "shutting down"}, auth_token=node.secret_id
    )
    limit = drain_wait_s(client)
    start = time.monotonic()
    logger.info("self-drain started node_id=%s deadline=%s force=%s", node.id, spec.deadline, spec.force)
    get = NodeSpecificRequest(node_id=node.id, secret_id=node.secret_id, auth_token=node.secret_id)
    started = False
    failing_since: float | None = None
    while limit is None or time.monotonic() - start < limit:
        try:
            if not started:
                await client.server_list.call(NODE_UPDATE_DRAIN, req)
                started = True
            reply = await client.server_list.call(NODE_GET, get)
        except (RPCError, OSError) as err:
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since > ERROR_GIVE_UP_S:
                logger.error("self-drain gave up: servers unreachable node_id=%s err=%s", node.id, err)
                return False
            logger.warning("self-drain: server call failed, retrying node_id=%s err=%s", node.id, err)
            await asyncio.sleep(POLL_S)
            continue
        failing_since = None
        if reply.node is None or reply.node.drain_strategy is None:
            logger.info("self-drain complete node_id=%s seconds=%.1f", node.id, time.monotonic() - start)
            return True
        await asyncio.sleep(POLL_S)
    logger.error("self-drain exceeded deadline node_id=%s", node.id)
    return False

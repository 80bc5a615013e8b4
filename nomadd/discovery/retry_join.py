"""``start_join`` and ``retry_join`` with Nomad's semantics (command/agent/retry_join.go).

Each attempt re-resolves every entry (so a changed DNS record or a new mDNS announcement is
followed without a restart) and hands the addresses to ``join``, a coroutine that returns how
many peers it joined (gossip join for servers, "set server list" for clients). An attempt
fails when no entry resolves, ``join`` raises, or ``join`` returns 0. Then: ``join failed``
warning with ``retry=<interval>``, sleep, try again; after ``max_attempts`` failed attempts
(0 = forever) log and raise :class:`RetryJoinExhausted` (``max join retry exhausted, exiting``),
on which the agent exits 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from nomadd.discovery.entry import DiscoveryError, Entry, PortKind
from nomadd.discovery.resolver import Resolver
from nomadd.helper.duration import format_duration

__all__ = ["EXHAUSTED_MESSAGE", "RetryJoinExhausted", "retry_join", "start_join"]

logger = logging.getLogger(__name__)

EXHAUSTED_MESSAGE: Final = "max join retry exhausted, exiting"

JoinFn = Callable[[list[str]], Awaitable[int]]


class RetryJoinExhausted(DiscoveryError):
    """``retry_join`` failed ``max_attempts`` times in a row; the agent exits 1.

    Its message is Nomad's ``max join retry exhausted, exiting``; the last attempt's error is
    chained as ``__cause__``. A single failed ``start_join`` raises plain DiscoveryError.
    """


async def _attempt(entries: list[Entry | str], join: JoinFn, resolver: Resolver, port_kind: PortKind) -> int:
    addresses = await resolver.resolve_all(entries, port_kind=port_kind)
    try:
        joined = await join(addresses)
    except DiscoveryError:
        raise
    except Exception as err:  # the join callback's own failure (network, RPC, ...)
        raise DiscoveryError(f"join {','.join(addresses)}: {err}") from err
    if joined <= 0:
        raise DiscoveryError(f"join {','.join(addresses)}: no server could be joined")
    return joined


async def start_join(
    entries: Iterable[Entry | str],
    join: JoinFn,
    *,
    resolver: Resolver,
    port_kind: PortKind = "serf",
) -> int:
    """Resolve and join once; the number joined. Raises DiscoveryError (the agent exits 1).

    Malformed string entries raise ConfigError.
    """
    joined = await _attempt(list(entries), join, resolver, port_kind)
    logger.info("start join completed initial_servers=%d", joined)
    return joined


async def retry_join(
    entries: Iterable[Entry | str],
    join: JoinFn,
    *,
    resolver: Resolver,
    interval: float,
    max_attempts: int = 0,
    port_kind: PortKind = "serf",
) -> int:
    """Join with retries; the number joined by the attempt that succeeded.

    ``interval`` is ``retry_interval`` in seconds, ``max_attempts`` is ``retry_max`` (0 =
    forever). Raises RetryJoinExhausted after ``max_attempts`` failures; ConfigError at once for
    a malformed string entry. Cancel the task to stop retrying (on shutdown).
    """
    if interval < 0 or max_attempts < 0:
        raise ValueError("retry interval and max attempts must not be negative")
    items = list(entries)
    retry = format_duration(interval)
    attempt = 0
    while True:
        attempt += 1
        try:
            joined = await _attempt(items, join, resolver, port_kind)
        except DiscoveryError as err:
            if max_attempts and attempt >= max_attempts:
                logger.warning("join failed error=%s attempt=%d", err, attempt)
                logger.error(EXHAUSTED_MESSAGE)
                raise RetryJoinExhausted(EXHAUSTED_MESSAGE) from err
            logger.warning("join failed error=%s retry=%s attempt=%d", err, retry, attempt)
            await asyncio.sleep(interval)
            continue
        logger.info("retry join completed initial_servers=%d attempts=%d", joined, attempt)
        return joined

"""Client-side heartbeat timing (Nomad's ``client/client.go`` retry and stagger rules).

* register retry: ``15s + rand[0, 15s)``; with no server known: 1 s;
* first heartbeat after registering: ``rand[0, FIRST_HEARTBEAT_STAGGER_S)``, at once in
  ``-dev`` (Nomad staggers it over 10 s; nomadd keeps it short so a node is ``ready`` about a
  second after it starts);
* then every ``HeartbeatTTL`` from the last reply;
* on a failed heartbeat, :func:`heartbeat_retry_delay` (``getHeartbeatRetryIntv``).
"""

from __future__ import annotations

import random

__all__ = [
    "FIRST_HEARTBEAT_STAGGER_S",
    "NO_SERVERS_RETRY_S",
    "REGISTER_RETRY_S",
    "heartbeat_retry_delay",
    "random_stagger",
    "register_retry_delay",
]

REGISTER_RETRY_S = 15.0  # Nomad's registerRetryIntv
NO_SERVERS_RETRY_S = 1.0  # Nomad's noServerRetryIntv
FIRST_HEARTBEAT_STAGGER_S = 1.0
MISSED_LIMIT_S = 30.0  # past this, retry on the absolute time missed (Nomad)


def random_stagger(limit: float, rng: random.Random | None = None) -> float:
    """Uniform in ``[0, limit)`` (Nomad's ``helper.RandomStagger``); 0 for limit <= 0."""
    if limit <= 0:
        return 0.0
    return (rng.random() if rng is not None else random.random()) * limit


def register_retry_delay(rng: random.Random | None = None) -> float:
    return REGISTER_RETRY_S + random_stagger(REGISTER_RETRY_S, rng)


def heartbeat_retry_delay(
    *,
    now: float,
    last_ok: float,
    ttl: float,
    have_heartbeated: bool,
    no_leader: bool,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retrying a failed heartbeat.

    Never heartbeated, or no leader: like a registration (15-30 s: after an election the new
    leader gave every node the long failover TTL, so do not rush it). Otherwise with ``left``
    the time until the TTL ends: missed by less than 30 s → 1-2 s; else a stagger over
    ``|left|`` clamped to [1-2 s, 25-30 s].
    """
    if not have_heartbeated or no_leader:
        return register_retry_delay(rng)
    left = last_ok + ttl - now
    if left < -MISSED_LIMIT_S:
        left = -left
    elif left < 0:
        return 1.0 + random_stagger(1.0, rng)
    stagger = random_stagger(left, rng)
    if stagger < 1.0:
        return 1.0 + random_stagger(1.0, rng)
    if stagger > MISSED_LIMIT_S:
        return 25.0 + random_stagger(5.0, rng)
    return stagger

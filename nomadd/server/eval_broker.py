"""The eval broker (leader only): a priority queue of pending evaluations for the workers.

Nomad's EvalBroker, reduced to what one process needs:

* ``enqueue(ev)`` — pending evals from committed entries (the FSM's applied listener) and, on
  election, every pending eval in state. Duplicates (same ID) are ignored. An eval with a
  ``WaitUntil`` in the future waits in a delay heap until then.
* one eval per job in flight: a second eval of a busy job waits in the job's pending list; on
  ``ack`` the newest waiting one is released and the older ones are handed to ``on_cancel``
  (they would plan the same thing; the leader marks them ``canceled``).
* ``dequeue(timeout)`` — highest priority first, then oldest (CreateIndex).
* ``nack(id)`` — back to the queue; after ``DELIVERY_LIMIT`` deliveries it is dropped,
  handed to ``on_failed`` (the leader marks it failed) and ``nack`` returns False.
* every delivery has a token (``token_of(id)``, Nomad's eval token): a follower's worker that
  dequeued by RPC must present it to ack, nack or submit plans for the eval, so a stale or
  foreign worker cannot act on an eval redelivered to another. A delivery made with
  ``nack_timeout`` (the RPC's) is nacked by the broker when not acked in time (the follower
  died or lost the leader).

Everything runs on the event loop; no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import time
from collections.abc import Callable

from nomadd.structs.errors import PermissionDeniedError
from nomadd.structs.eval import Evaluation
from nomadd.structs.timeutil import NS_PER_S, parse_time

logger = logging.getLogger(__name__)

__all__ = ["DELIVERY_LIMIT", "EvalBroker"]

DELIVERY_LIMIT = 3  # Nomad's default eval delivery limit before an eval is failed

_JobKey = tuple[str, str]


def _key(ev: Evaluation) -> _JobKey:
    return ev.namespace, ev.job_id


class EvalBroker:
    def __init__(
        self,
        on_cancel: Callable[[list[Evaluation]], None] | None = None,
        on_failed: Callable[[Evaluation], None] | None = None,
    ) -> None:
        self._on_cancel = on_cancel
        self._on_failed = on_failed  # an eval nack dropped at the delivery limit (to mark failed)
        self.enabled = False
        self._seq = itertools.count()
        self._ready: list[tuple[int, int, int, Evaluation]] = []
        self._known: set[str] = set()
        self._busy: dict[_JobKey, str] = {}
        self._pending: dict[_JobKey, list[Evaluation]] = {}
        self._unacked: dict[str, Evaluation] = {}
        self._tokens: dict[str, str] = {}  # eval ID -> token of its outstanding delivery
        self._timers: dict[str, asyncio.TimerHandle] = {}  # eval ID -> its nack timeout
        self._deliveries: dict[str, int] = {}
        self._delayed: list[tuple[int, int, Evaluation]] = []
        self._delay_handle: asyncio.TimerHandle | None = None
        self._wakeup = asyncio.Event()
        self.stats = {"enqueued": 0, "acked": 0, "nacked": 0, "canceled": 0}

    # ---- lifecycle ----------------------------------------------------------------------
    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            self._ready.clear()
            self._known.clear()
            self._busy.clear()
            self._pending.clear()
            self._unacked.clear()
            self._tokens.clear()
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            self._deliveries.clear()
            self._delayed.clear()
            if self._delay_handle is not None:
                self._delay_handle.cancel()
                self._delay_handle = None
        self._wakeup.set()

    # ---- queueing -----------------------------------------------------------------------
    def enqueue(self, ev: Evaluation) -> None:
        if not self.enabled or ev.id in self._known or ev.terminal():
            return
        self._known.add(ev.id)
        self.stats["enqueued"] += 1
        wait_until = parse_time(ev.wait_until) if ev.wait_until else 0
        if wait_until > time.time_ns():
            heapq.heappush(self._delayed, (wait_until, next(self._seq), ev))
            self._arm_delay()
            return
        self._to_job_queue(ev)

    def _to_job_queue(self, ev: Evaluation) -> None:
        key = _key(ev)
        if key in self._busy:
            self._pending.setdefault(key, []).append(ev)
            return
        self._push_ready(ev)

    def _push_ready(self, ev: Evaluation) -> None:
        self._busy[_key(ev)] = ev.id
        heapq.heappush(self._ready, (-ev.priority, ev.create_index, next(self._seq), ev))
        self._wakeup.set()

    def _arm_delay(self) -> None:
        if self._delay_handle is not None:
            self._delay_handle.cancel()
            self._delay_handle = None
        if not self._delayed:
            return
        delay_s = max(0.0, (self._delayed[0][0] - time.time_ns()) / NS_PER_S)
        self._delay_handle = asyncio.get_running_loop().call_later(delay_s, self._release_delayed)

    def _release_delayed(self) -> None:
        self._delay_handle = None
        now = time.time_ns()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, ev = heapq.heappop(self._delayed)
            self._to_job_queue(ev)
        self._arm_delay()

    async def dequeue(self, timeout: float, nack_timeout: float | None = None) -> Evaluation | None:
        """The next ready eval, or None after ``timeout`` seconds (or when disabled). With
        ``nack_timeout`` the broker nacks the delivery itself if it is not acked in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.enabled:
            if self._ready:
                return self._deliver(nack_timeout)
            self._wakeup.clear()
            left = deadline - loop.time()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._wakeup.wait()
        # disabled: still suspend, so a caller looping on dequeue can be cancelled
        await asyncio.sleep(min(timeout, 0.05))
        return None

    def dequeue_ready(self, limit: int, nack_timeout: float | None = None) -> list[Evaluation]:
        """Up to ``limit`` ready evals at once, without waiting (a follower's batch)."""
        out: list[Evaluation] = []
        while self.enabled and self._ready and len(out) < limit:
            out.append(self._deliver(nack_timeout))
        return out

    def _deliver(self, nack_timeout: float | None) -> Evaluation:
        _, _, _, ev = heapq.heappop(self._ready)
        self._unacked[ev.id] = ev
        self._deliveries[ev.id] = self._deliveries.get(ev.id, 0) + 1
        token = self._tokens[ev.id] = os.urandom(16).hex()
        if nack_timeout is not None:
            loop = asyncio.get_running_loop()
            self._timers[ev.id] = loop.call_later(nack_timeout, self._nack_timed_out, ev.id, token)
        return ev

    def token_of(self, eval_id: str) -> str | None:
        """The token of the eval's outstanding delivery (None: not outstanding)."""
        return self._tokens.get(eval_id)

    def check_token(self, eval_id: str, token: str) -> None:
        """Raise 403 unless ``token`` is the one of the eval's outstanding delivery."""
        want = self._tokens.get(eval_id)
        if want is None or not token or want != token:
            raise PermissionDeniedError(f"eval {eval_id}: token does not match an outstanding delivery")

    def _nack_timed_out(self, eval_id: str, token: str) -> None:
        self._timers.pop(eval_id, None)
        if self._tokens.get(eval_id) != token:
            return
        logger.warning("eval nack timeout reached eval_id=%s", eval_id)
        self.nack(eval_id)

    def _settle(self, eval_id: str, token: str | None) -> Evaluation | None:
        """The outstanding eval, its token and timer dropped; ``token`` (an RPC caller's) must
        match. None: not outstanding."""
        if token is not None:
            self.check_token(eval_id, token)
        ev = self._unacked.pop(eval_id, None)
        self._tokens.pop(eval_id, None)
        timer = self._timers.pop(eval_id, None)
        if timer is not None:
            timer.cancel()
        return ev

    def ack(self, eval_id: str, token: str | None = None) -> None:
        """Done with the eval. ``token``: the delivery's (a remote worker's ack; a mismatch
        raises 403); None for this server's own workers."""
        ev = self._settle(eval_id, token)
        if ev is None:
            return
        self.stats["acked"] += 1
        self._known.discard(eval_id)
        self._deliveries.pop(eval_id, None)
        key = _key(ev)
        if self._busy.get(key) == eval_id:
            del self._busy[key]
        waiting = self._pending.pop(key, [])
        if not waiting:
            return
        waiting.sort(key=lambda e: (e.priority, e.create_index))
        newest = waiting.pop()
        if waiting:
            self.stats["canceled"] += len(waiting)
            for old in waiting:
                self._known.discard(old.id)
            if self._on_cancel is not None:
                self._on_cancel(waiting)
        self._push_ready(newest)

    def nack(self, eval_id: str, token: str | None = None) -> bool:
        """Requeue a failed delivery; False when the delivery limit is reached (dropped).
        ``token`` as in :meth:`ack`."""
        ev = self._settle(eval_id, token)
        if ev is None:
            return False
        self.stats["nacked"] += 1
        key = _key(ev)
        if self._busy.get(key) == eval_id:
            del self._busy[key]
        if self._deliveries.get(eval_id, 0) >= DELIVERY_LIMIT:
            self._known.discard(eval_id)
            self._deliveries.pop(eval_id, None)
            waiting = self._pending.pop(key, [])
            for w in waiting:
                self._to_job_queue(w)
            if self._on_failed is not None:
                self._on_failed(ev)
            return False
        self._push_ready(ev)
        return True

    def ready_count(self) -> int:
        return len(self._ready)

    def unacked_count(self) -> int:
        return len(self._unacked)

    def total(self) -> int:
        """Evals the broker holds in any state (ready, waiting, delayed, unacked)."""
        return len(self._known)

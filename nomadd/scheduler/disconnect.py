"""Reconciling allocations of groups with ``disconnect {}`` / ``max_client_disconnect``
(Nomad's computeDisconnecting / reconcileReconnecting, scheduler/reconcile.go).

:func:`split` runs before :mod:`nomadd.scheduler.reconcile`'s normal sorting for one group and
takes out the allocations disconnect rules decide:

* on a **disconnected** node, running or pending, inside the window (which started when the
  node became disconnected): marked client status ``unknown`` (not stopped: it keeps running on
  the client) with a follow-up evaluation at the window's end, and replaced if ``replace``;
* already ``unknown`` inside the window: left alone (its replacement holds the name);
* ``unknown`` past the window, or on a node that is down or gone: stopped as ``lost`` (replaced
  unless it already was);
* on a node that is back, reporting its real status again while its replacement runs: the
  ``reconcile`` rule picks one; ``keep_original`` (also used for ``best_score`` and
  ``longest_running``: the original started first and was never restarted by the servers)
  stops the replacement, and the original goes on as if never replaced (also once its
  replacement is gone); ``keep_replacement`` stops the original. Still ``unknown`` there: both
  are left alone until the client reports.

Every other allocation goes back to the normal reconciler; ``taken`` counts the names the
decided ones keep so the group's ``count`` is applied over both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from nomadd.structs.alloc import Allocation, AllocClientStatus, AllocDesiredStatus
from nomadd.structs.disconnect import RECONCILE_KEEP_REPLACEMENT, lost_after_ns, reconcile_rule, replaces
from nomadd.structs.job import TaskGroup
from nomadd.structs.node import Node, NodeStatus
from nomadd.structs.timeutil import NS_PER_S

__all__ = ["ALLOC_RECONNECTED", "DisconnectSplit", "node_disconnect_window_ns", "split"]

ALLOC_RECONNECTED = "alloc not needed due to disconnected client reconnect"

_ACTIVE = (AllocClientStatus.RUNNING, AllocClientStatus.PENDING)


@dataclasses.dataclass(slots=True)
class DisconnectSplit:
    rest: list[Allocation] = dataclasses.field(default_factory=list)  # for the normal reconciler
    mark_unknown: list[tuple[Allocation, int]] = dataclasses.field(default_factory=list)  # (as unknown, due)
    replace: list[Allocation] = dataclasses.field(default_factory=list)  # place a replacement of each
    lost: list[Allocation] = dataclasses.field(default_factory=list)  # stop as lost, no replacement
    stop: list[Allocation] = dataclasses.field(default_factory=list)  # reconnect losers
    taken: set[str] = dataclasses.field(default_factory=set)  # names held by the decided ones


def _gone(node: Node | None) -> bool:
    return node is None or node.status == NodeStatus.DOWN


def split(
    tg: TaskGroup,
    allocs: Iterable[Allocation],
    node_of: Callable[[str], Node | None],
    now_ns: int,
) -> DisconnectSplit:
    """Sort one group's allocations (see the module doc)."""
    out = DisconnectSplit()
    items = list(allocs)
    window = lost_after_ns(tg)
    if window <= 0:
        out.rest = items
        return out
    by_id = {a.id: a for a in items}
    skip: set[str] = set()  # replacements decided together with their original
    decided: list[Allocation] = []
    kept: list[Allocation] = []  # reconnected originals: live again for the normal reconciler
    for alloc in items:
        if alloc.desired_status != AllocDesiredStatus.RUN or alloc.client_terminal():
            continue
        node = node_of(alloc.node_id)
        nxt = by_id.get(alloc.next_allocation) if alloc.next_allocation else None
        nxt_alive = nxt is not None and not nxt.terminal()
        if node is not None and node.status == NodeStatus.DISCONNECTED:
            due = node.status_updated_at * NS_PER_S + window
            if now_ns >= due:
                if alloc.client_status == AllocClientStatus.UNKNOWN and alloc.next_allocation:
                    out.lost.append(alloc)  # its replacement is there already
                    decided.append(alloc)
                continue  # otherwise: lost and replaced by the normal reconciler
            if alloc.client_status in _ACTIVE:
                out.mark_unknown.append(
                    (dataclasses.replace(alloc, client_status=AllocClientStatus.UNKNOWN), due)
                )
            elif alloc.client_status != AllocClientStatus.UNKNOWN:
                continue
            decided.append(alloc)
            if not alloc.next_allocation:  # else its replacement holds the name
                if replaces(tg):
                    out.replace.append(alloc)
                out.taken.add(alloc.name)
        elif _gone(node):
            if alloc.client_status == AllocClientStatus.UNKNOWN and alloc.next_allocation:
                out.lost.append(alloc)
                decided.append(alloc)
        elif alloc.client_status == AllocClientStatus.UNKNOWN:
            if nxt_alive:  # back, but the client has not reported yet: wait for it
                decided.append(alloc)
        elif alloc.next_allocation and alloc.client_status in _ACTIVE:
            # back and reporting: original vs replacement
            decided.append(alloc)
            if nxt_alive and nxt is not None:
                if reconcile_rule(tg) == RECONCILE_KEEP_REPLACEMENT:
                    out.stop.append(alloc)
                    continue
                out.stop.append(nxt)
                skip.add(nxt.id)
            kept.append(dataclasses.replace(alloc, next_allocation=""))
    ids = {a.id for a in decided} | skip
    out.rest = [a for a in items if a.id not in ids] + kept
    return out


def node_disconnect_window_ns(allocs: Iterable[Allocation]) -> int:
    """The longest ``lost_after`` among a node's running allocations (0: none allows it), so a
    node whose heartbeat expires is ``disconnected`` for that long before it is ``down``."""
    longest = 0
    for alloc in allocs:
        if alloc.terminal() or alloc.job is None:
            continue
        longest = max(longest, lost_after_ns(alloc.job.lookup_task_group(alloc.task_group)))
    return longest

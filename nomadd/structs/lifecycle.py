"""A task's ``lifecycle {}`` block (Nomad's TaskLifecycleConfig): when it runs in its allocation.

* ``prestart`` — before the main tasks: run to completion (they start once it succeeded; its
  failure fails the allocation), or with ``sidecar = true`` kept running beside them (they start
  once it runs);
* ``poststart`` — once every main task runs: to completion, or beside them as a sidecar;
* ``poststop`` — after the main tasks ended (or the allocation was stopped): to completion.

Sidecars are stopped when the main tasks are all dead. A task without the block is a *main*
task; a group needs at least one. The client's alloc runner (:mod:`nomadd.client.lifecycle`)
orders the tasks so.
"""

from __future__ import annotations

import dataclasses

__all__ = ["HOOKS", "POSTSTART", "POSTSTOP", "PRESTART", "TaskLifecycle"]

PRESTART = "prestart"
POSTSTART = "poststart"
POSTSTOP = "poststop"
HOOKS = (PRESTART, POSTSTART, POSTSTOP)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TaskLifecycle:
    hook: str = ""
    sidecar: bool = False

    def problems(self) -> list[str]:
        if not self.hook:
            return ["Hook: no lifecycle hook provided (prestart, poststart or poststop)"]
        if self.hook not in HOOKS:
            return [f"Hook: invalid value {self.hook!r} (prestart, poststart or poststop)"]
        if self.hook == POSTSTOP and self.sidecar:
            return ["Sidecar: a poststop task cannot be a sidecar"]
        return []

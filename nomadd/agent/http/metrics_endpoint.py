"""``/v1/metrics``: go-metrics inmem JSON, or the Prometheus text format with ?format=prometheus."""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import TYPE_CHECKING

from aiohttp import web

from nomadd import telemetry
from nomadd.server.state import store_allocs
from nomadd.structs.errors import ValidationError

if TYPE_CHECKING:
    import psutil

    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router


_process: list[psutil.Process] = []  # this process's handle, made once (~20 us each)


def _this_process() -> psutil.Process:
    import psutil  # on first use: not at start-up

    if not _process or _process[0].pid != os.getpid():
        _process[:] = [psutil.Process(os.getpid())]
    return _process[0]


def _runtime_gauges(agent: Agent) -> None:
    """Refresh process gauges on read (Nomad emits these every collection interval)."""
    mem = _this_process().memory_info()
    telemetry.set_gauge("nomad.runtime.num_goroutines", threading.active_count())
    telemetry.set_gauge("nomad.runtime.alloc_bytes", mem.rss)
    telemetry.set_gauge("nomad.runtime.sys_bytes", mem.vms)
    telemetry.set_gauge("nomad.runtime.total_gc_runs", sum(s["collections"] for s in gc.get_stats()))
    telemetry.set_gauge("nomad.agent.uptime_seconds", time.monotonic() - agent.started_at)


def _scheduling_gauges(agent: Agent) -> None:
    """The leader's eval broker and blocked evals (zero on followers), the placements committed."""
    if agent.server is None:
        return
    sched = agent.server.scheduling
    telemetry.set_gauge("nomad.nomad.broker.total_ready", sched.broker.ready_count())
    telemetry.set_gauge("nomad.nomad.broker.total_unacked", sched.broker.unacked_count())
    telemetry.set_gauge("nomad.nomad.blocked_evals.total_blocked", sched.blocked.count())
    # nomadd's own: placements of every plan result applied (replicated: every server, any leader)
    telemetry.set_gauge(
        "nomad.nomad.plan.placements_committed",
        store_allocs.placements_committed(agent.server.store.snapshot()),
    )


async def metrics(agent: Agent, req: web.Request) -> object:
    _runtime_gauges(agent)
    _scheduling_gauges(agent)
    fmt = req.query.get("format", "")
    if fmt == "prometheus":
        if not agent.config.prometheus_metrics:
            raise ValidationError(
                "Prometheus is not enabled; set telemetry.prometheus_metrics = true in the config"
            )
        return web.Response(
            body=telemetry.REGISTRY.to_prometheus(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
    if fmt:
        raise ValidationError(f"unsupported metrics format: {fmt}")
    return telemetry.REGISTRY.to_json()


def register(router: Router) -> None:
    router.add("GET", "/v1/metrics", metrics)

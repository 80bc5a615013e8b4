"""``nomadd agent``: flags → config → checks → start → banner → READY=1 → signals (Nomad's command.go).

Signals: SIGINT/SIGTERM stop the agent forcefully and exit 1, unless ``leave_on_interrupt`` /
``leave_on_terminate`` ask for a graceful leave (``STOPPING=1``, leave bounded by
``LEAVE_TIMEOUT_S``, exit 0; a second signal or the timeout exits 1). A second signal also ends
a forceful stop's wait for its components (a Raft dump nearly written, ``SHUTDOWN_TIMEOUT_S``).
SIGHUP reloads: it re-reads the same files and flags, applies what can change live, and keeps the
old config when the new one is invalid. Signal handlers only queue the signal; the main coroutine
acts on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, NoReturn, TextIO

from nomadd import __version__
from nomadd.agent import runtime
from nomadd.agent.config import AgentConfig, ConfigSources, load_config
from nomadd.agent.config_schema import Partial
from nomadd.agent.logging import GatedHandler, set_level, setup_logging
from nomadd.agent.permissions import check_permissions
from nomadd.agent.sdnotify import Notifier
from nomadd.agent.tls import PendingContexts, deferred_ca_loading, load_deferred
from nomadd.helper.flags import FlagError, FlagSet
from nomadd.structs.errors import ConfigError, NomaddError

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent

logger = logging.getLogger(__name__)

__all__ = ["agent_flags", "run"]

# Exit status of an unexpected exception (EX_SOFTWARE); exit 1 is Nomad's forceful stop.
EXIT_CRASH = 70
# How long the forceful path waits for components to close before exiting anyway: a follower
# may wait up to 15 s for a Raft dump nearly written (server/raft/stop_dump.py), within systemd's
# TimeoutStopSec=30 of nomad-server.service.
SHUTDOWN_TIMEOUT_S = 25.0
_SIGNAL_NAMES = {signal.SIGINT: "interrupt", signal.SIGTERM: "terminated", signal.SIGHUP: "hangup"}


class UI:
    """Nomad's PrefixedUi: ``==> `` for output and errors, four spaces for info lines."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode

    def output(self, text: str) -> None:
        self._write(sys.stdout, "==> ", text, "info")

    def info(self, text: str) -> None:
        self._write(sys.stdout, "    ", text, "info")

    def error(self, text: str) -> None:
        self._write(sys.stderr, "==> ", text, "error")

    def _write(self, out: TextIO, prefix: str, text: str, level: str) -> None:
        if self.json_mode:
            if text:
                line = json.dumps(
                    {
                        "@level": level,
                        "@message": text,
                        "@module": "agent",
                        "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    }
                )
                print(line, file=out, flush=True)
            return
        print(f"{prefix}{text}" if text else "", file=out, flush=True)


def agent_flags() -> FlagSet:
    fs = FlagSet("agent")
    fs.bool("dev", "Start the agent in development mode (server + client, 127.0.0.1).")
    fs.bool("server", "Enable server mode for the agent.")
    fs.bool("client", "Enable client mode for the agent.")
    fs.strings("config", "A config file or directory (*.toml, lexical order). Repeatable.", "<path>")
    fs.string("data-dir", "The data directory (absolute path).", placeholder="<path>")
    fs.string(
        "plugin-dir",
        "Accepted for compatibility; nomadd has no external plugins.",
        placeholder="<path>",
    )
    fs.string("region", 'The region of the agent (default "global").')
    fs.string("dc", 'The datacenter of the agent (default "dc1").')
    fs.string("node", "The name of this node (default: hostname).")
    fs.string("bind", 'The address every listener binds (default "0.0.0.0").', placeholder="<addr>")
    fs.string("log-level", "TRACE, DEBUG, INFO, WARN, ERROR or OFF (default INFO).", placeholder="<level>")
    fs.bool("log-json", "Output logs as JSON.")
    fs.int("bootstrap-expect", "Servers to wait for before bootstrapping the cluster.")
    fs.string(
        "encrypt",
        "The base64 gossip encryption key (also keys the Raft secret).",
        placeholder="<key>",
    )
    fs.int("raft-protocol", "The Raft protocol version; only 3 is supported.")
    fs.bool("rejoin", "Rejoin the cluster after a graceful leave.")
    fs.strings("join", "Server address to join at start (servers). Repeatable.", "<address>")
    fs.strings("retry-join", "Server address to join, retried (servers). Repeatable.", "<address>")
    fs.string("retry-interval", 'Time between join attempts (default "30s").', placeholder="<duration>")
    fs.int("retry-max", "Join attempts before giving up (0 = forever).")
    fs.strings("servers", "Comma-separated server addresses (clients).", "<addrs>", split=",")
    fs.string("node-class", "The node class of the client.")
    fs.string("node-pool", 'The node pool of the client (default "default").')
    fs.strings("meta", "KEY=VALUE client metadata. Repeatable.", "<key=value>")
    fs.string("network-interface", "The interface to fingerprint for the client's address.")
    fs.string(
        "state-dir",
        "The client's state directory (default <data-dir>/client).",
        placeholder="<path>",
    )
    fs.string(
        "alloc-dir",
        "The client's allocation directory (default <data-dir>/alloc).",
        placeholder="<path>",
    )
    fs.bool("acl-enabled", "Enable ACLs: every request needs a token whose policies allow it.")
    return fs


def _flags_to_partial(v: dict[str, object]) -> Partial:
    """Turn parsed flag values into a partial config (flags win over files)."""
    p: Partial = {}

    def put(dotted: str, value: object) -> None:
        cur = p
        parts = dotted.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = value

    simple = {
        "data-dir": "data_dir",
        "region": "region",
        "dc": "datacenter",
        "node": "name",
        "bind": "bind_addr",
        "log-level": "log_level",
        "bootstrap-expect": "server.bootstrap_expect",
        "encrypt": "server.encrypt",
        "raft-protocol": "server.raft_protocol",
        "retry-max": "server.server_join.retry_max",
        "node-class": "client.node_class",
        "node-pool": "client.node_pool",
        "network-interface": "client.network_interface",
        "state-dir": "client.state_dir",
        "alloc-dir": "client.alloc_dir",
        "join": "server.server_join.start_join",
        "retry-join": "server.server_join.retry_join",
        "servers": "client.servers",
    }
    for flag, key in simple.items():
        if flag in v:
            put(key, v[flag])
    for flag, key in (
        ("server", "server.enabled"),
        ("client", "client.enabled"),
        ("log-json", "log_json"),
        ("rejoin", "server.rejoin_after_leave"),
        ("acl-enabled", "acl.enabled"),
    ):
        if v.get(flag):
            put(key, True)
    if "retry-interval" in v:
        from nomadd.helper.duration import parse_duration

        raw = str(v["retry-interval"])
        try:
            put("server.server_join.retry_interval", parse_duration(raw))
        except ValueError:
            raise ConfigError(f'flag -retry-interval: invalid duration "{raw}"') from None
    if "meta" in v:
        meta: dict[str, str] = {}
        for item in v["meta"]:  # type: ignore[attr-defined]
            key, eq, value = str(item).partition("=")
            if not eq or not key:
                raise ConfigError(f'flag -meta: expected KEY=VALUE, got "{item}"')
            meta[key] = value
        put("client.meta", meta)
    return p


def _banner(agent: Agent) -> list[tuple[str, str]]:
    cfg = agent.config
    server = cfg.server.enabled
    http_bind = f"{cfg.addresses.http if cfg.addresses else cfg.bind_addr}:{agent.http.port}"
    bind = f"HTTP: [{http_bind}]"
    adv = f"HTTP: {cfg.advertise.http}"
    if server:
        addrs = cfg.addresses
        assert addrs is not None
        bind += f"; RPC: {addrs.raft}:{cfg.ports.raft}; Serf: {addrs.serf}:{cfg.ports.serf}"
        adv += f"; RPC: {cfg.advertise.raft}; Serf: {cfg.advertise.serf}"
    info = {
        "advertise addrs": adv,
        "bind addrs": bind,
        "client": str(cfg.client.enabled).lower(),
        "log level": cfg.log_level,
        "region": f"{cfg.region} (DC: {cfg.datacenter})",
        "server": str(server).lower(),
        "version": __version__,
    }
    if server and agent.server is not None:
        info["node id"] = agent.server.node_id
    return sorted(info.items())


def _startup_warnings(cfg: AgentConfig) -> list[str]:
    out = []
    tls_on = cfg.tls.http and cfg.tls.rpc
    acl_on = cfg.acl.enabled  # the warning stays until both are on
    if not cfg.dev_mode and not (tls_on and acl_on):
        missing = " and no ".join(w for w, on in (("TLS", tls_on), ("ACLs", acl_on)) if not on)
        out.append(
            f"WARNING: the HTTP API has no {missing}: expose port {cfg.ports.http} only to trusted networks."
        )
    if cfg.server.enabled:
        if cfg.server.bootstrap_expect == 1:
            out.append("WARNING: Bootstrap mode enabled! Potentially unsafe operation.")
        elif cfg.server.bootstrap_expect % 2 == 0 and cfg.server.bootstrap_expect:
            out.append("WARNING: Number of bootstrap servers should ideally be set to an odd number.")
    if cfg.client.drain_on_shutdown is not None and not (cfg.leave_on_terminate or cfg.leave_on_interrupt):
        out.append(
            "WARNING: client.drain_on_shutdown drains only on a graceful stop: "
            "set leave_on_terminate (SIGTERM) or leave_on_interrupt (SIGINT)."
        )
    return out


def run(args: Sequence[str]) -> int:
    """Entry point of ``nomadd agent``; returns the exit status."""
    # Start-up builds many long-lived objects (classes, tables); the cyclic GC would scan them
    # again and again. It is switched back on, with those objects frozen, once the agent is ready.
    gc.disable()
    with deferred_ca_loading() as pending_ca:
        from nomadd.agent.agent import Agent  # noqa: F401  (the heavy imports: aiohttp, pysyncobj, ...)
    fs = agent_flags()
    try:
        values, rest = fs.parse(args)
    except FlagError as err:
        print(f"{err}\nUsage: nomadd agent [options]\n\n{fs.usage()}", file=sys.stderr)
        return 1
    ui = UI()
    if rest:
        ui.error(f"unexpected arguments: {' '.join(rest)}")
        return 1
    dev = bool(values.get("dev"))
    dev_dir = ""
    try:
        flags = _flags_to_partial(values)
        if dev and "data_dir" not in flags:
            dev_dir = tempfile.mkdtemp(prefix="nomadd-dev-")
        sources = ConfigSources(
            paths=tuple(str(p) for p in values.get("config", ())),  # type: ignore[attr-defined]
            flags=flags,
            dev=dev,
            dev_data_dir=dev_dir,
        )
        config, warnings = load_config(sources)
        ui = UI(json_mode=config.log_json)
        for w in _startup_warnings(config):
            ui.error(w)
        for w in warnings:
            ui.error(w)
        for w in check_permissions(config):
            ui.error(w)
    except NomaddError as err:
        ui.error(str(err))
        if dev_dir:
            shutil.rmtree(dev_dir, ignore_errors=True)
        return 1
    gate = setup_logging(config.log_level, config.log_json)
    try:
        code = asyncio.run(_serve(config, sources, ui, gate, pending_ca))
    except Exception:
        # A bug, not an operator error: keep the traceback, and exit with EX_SOFTWARE so a unit
        # can tell a crash from Nomad's exit 1 on a forceful stop (SuccessExitStatus=1). The
        # log may still be gated (a crash during start-up): open it, and say it on stderr too.
        gate.open()
        logger.exception("agent crashed")
        traceback.print_exc(file=sys.stderr)
        code = EXIT_CRASH
    finally:
        if dev_dir:
            shutil.rmtree(dev_dir, ignore_errors=True)
    _exit(code)


def _exit(code: int) -> NoReturn:
    """Exit now, as Nomad's binary does, even if a library thread still lingers.

    Every component has been shut down (bounded) by then; a thread that did not stop in time —
    a blocking call in the default executor, a third-party library thread — must not keep a
    stopped agent alive (systemd would wait for TimeoutStopSec, then SIGKILL it).
    """
    lingering = [t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if lingering:
        logger.debug("exiting with threads still running threads=%s", ",".join(lingering))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _serve(
    config: AgentConfig, sources: ConfigSources, ui: UI, gate: GatedHandler, pending_ca: PendingContexts
) -> int:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import HTTPServer

    loop = asyncio.get_running_loop()
    notifier = Notifier()
    signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, signals.put_nowait, sig)

    if config.files:
        ui.output(f"Loaded configuration from {', '.join(config.files)}")
    else:
        ui.output("No configuration files loaded")
    ui.output("Starting nomadd agent...")
    notifier.status("starting")
    try:
        agent = Agent(config, HTTPServer)
    except NomaddError as err:
        gate.open()
        ui.error(f"Error starting agent: {err}")
        return 1
    try:
        await agent.start()
    except (OSError, NomaddError) as err:
        gate.open()
        ui.error(f"Error starting agent: {err}")
        await _bounded_shutdown(agent)
        return 1
    ui.output("nomadd agent configuration:")
    ui.info("")
    for key, value in _banner(agent):
        ui.info(f"{' ' * (18 - len(key))}{key.title()}: {value}")
    ui.info("")
    ui.output("nomadd agent started! Log data will stream in below:")
    ui.info("")
    gate.open()

    state = _Runner(agent, sources, ui, notifier)
    agent.reload_hook = state.reload
    notifier.ready(status="running")
    watch = runtime.install()  # the GC policy (bounded pauses at any state size) and its watch
    agent.tasks.spawn(watch.run(), "runtime-watch")
    if (trigger := runtime.growth_trigger(config.name)) is not None:
        agent.tasks.spawn(runtime.grow_heap(trigger), "test-heap-growth")
    await asyncio.to_thread(load_deferred, pending_ca)
    # Vital: without its pings systemd kills the agent at WatchdogSec without saying why.
    agent.tasks.spawn(notifier.run_watchdog(), "sd-watchdog", vital=True)
    try:
        return await state.wait_for_stop(signals)
    finally:
        await agent.tasks.aclose()


class _Runner:
    def __init__(self, agent: Agent, sources: ConfigSources, ui: UI, notifier: Notifier) -> None:
        self.agent = agent
        self.sources = sources
        self.ui = ui
        self.notifier = notifier

    async def wait_for_stop(self, signals: asyncio.Queue[signal.Signals]) -> int:
        fatal = asyncio.create_task(self.agent.wait_fatal(), name="agent-fatal")
        try:
            return await self._wait_for_stop(signals, fatal)
        finally:
            fatal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fatal

    async def _wait_for_stop(
        self, signals: asyncio.Queue[signal.Signals], fatal: asyncio.Task[tuple[str, int]]
    ) -> int:
        while True:
            next_signal = asyncio.create_task(signals.get())
            await asyncio.wait({next_signal, fatal}, return_when=asyncio.FIRST_COMPLETED)
            if not next_signal.done():
                next_signal.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await next_signal
                # Nomad: a component that cannot go on (retry_join exhausted) ends the agent, exit 1;
                # a vital background task that died ends it with 70 (EX_SOFTWARE).
                reason, code = fatal.result()
                self.ui.error(reason)
                await _bounded_shutdown(self.agent)
                return code
            sig = next_signal.result()
            self.ui.output(f"Caught signal: {_SIGNAL_NAMES.get(sig, sig.name)}")
            if sig == signal.SIGHUP:
                await self.reload()
                continue
            cfg = self.agent.config
            graceful = (sig == signal.SIGINT and cfg.leave_on_interrupt) or (
                sig == signal.SIGTERM and cfg.leave_on_terminate
            )
            if not graceful:
                await _bounded_shutdown(self.agent, signals)
                return 1
            self.notifier.stopping()  # Nomad sends STOPPING=1 on the graceful path only
            return await self._graceful(signals)

    async def _graceful(self, signals: asyncio.Queue[signal.Signals]) -> int:
        timeout = self.agent.leave_timeout_s()  # longer with the client's drain_on_shutdown
        self.ui.output("Gracefully shutting down agent...")
        leave = asyncio.create_task(self.agent.leave(), name="agent-leave")
        second = asyncio.create_task(signals.get(), name="second-signal")
        # A leave that drains the node outlasts the unit's TimeoutStopSec: keep extending it
        # while the leave runs (bounded by ``timeout``), so systemd does not kill the drain.
        extend = asyncio.create_task(self.notifier.extend_stop_timeout(), name="sd-extend-timeout")
        done, _ = await asyncio.wait({leave, second}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        code = 0 if leave in done and leave.exception() is None else 1
        if second in done:
            self.ui.output(f"Caught signal: {_SIGNAL_NAMES.get(second.result(), 'signal')}")
        elif leave not in done:
            logger.warning("graceful leave timed out timeout=%.0fs", timeout or 0)
        for t in (leave, second, extend):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await _bounded_shutdown(self.agent)
        return code

    async def reload(self) -> None:
        self.ui.output("Reloading configuration...")
        self.notifier.reloading()
        try:
            new, _warnings = load_config(self.sources)
        except ConfigError as err:
            self.ui.error(f"Failed to reload configs: {err}")
            self.notifier.ready(status="running (reload failed; old config kept)")
            return
        old = self.agent.config
        for name in ("bind_addr", "ports", "data_dir", "region", "datacenter", "name"):
            if getattr(old, name) != getattr(new, name):
                logger.warning("config change needs a restart to take effect key=%s", name)
        if old.server.enabled != new.server.enabled or old.client.enabled != new.client.enabled:
            logger.warning("config change needs a restart to take effect key=server/client mode")
        try:
            await self.agent.reload(replace(new, files=new.files))
        except ConfigError as err:
            self.ui.error(f"Failed to reload configs: {err}")
            self.notifier.ready(status="running (reload failed; old config kept)")
            return
        set_level(new.log_level)
        logger.info("reloaded configuration log_level=%s files=%s", new.log_level, ",".join(new.files))
        self.notifier.ready(status="running")


async def _bounded_shutdown(agent: Agent, signals: asyncio.Queue[signal.Signals] | None = None) -> None:
    """``agent.shutdown()``, bounded by ``SHUTDOWN_TIMEOUT_S``; a signal from ``signals`` (a
    second one, the first started this) ends the wait at once: the process exits after it."""
    stop = asyncio.create_task(agent.shutdown(), name="agent-shutdown")
    second = asyncio.create_task(signals.get(), name="second-signal") if signals is not None else None
    done, _ = await asyncio.wait(
        {stop} | ({second} if second else set()),
        timeout=SHUTDOWN_TIMEOUT_S,
        return_when=asyncio.FIRST_COMPLETED,
    )
    if second is not None and second in done:
        logger.warning(
            "shutdown cut short by a second signal signal=%s", _SIGNAL_NAMES.get(second.result(), "?")
        )
    elif stop not in done:
        logger.error("shutdown timed out timeout=%.0fs", SHUTDOWN_TIMEOUT_S)
    for task in (stop, second):
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

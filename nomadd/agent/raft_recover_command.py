"""``nomadd operator raft recover -peers=IP:port[,IP:port...] (-config=FILE... | -data-dir=DIR)``.

Runs in the CLI's process (as ``nomadd agent`` does): it reads the agent's configuration and
rewrites the server's Raft state through the server's own FSM, so it lives with the agent.

Run on a STOPPED server after a majority of servers is lost for good (docs/runbooks/quorum-loss.md):
keeps every committed entry this server holds and makes ``-peers`` its whole peer set
(:mod:`nomadd.server.raft_recover`). With ``-config`` (the server's config files or directories)
the data dir and this server's raft address come from it: the address must be among the peers,
and a server still listening on it is refused. ``-data-dir`` is the agent's ``data_dir``.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

from nomadd.agent.config import ConfigSources, load_config
from nomadd.helper.addr import split_host_port
from nomadd.helper.flags import FlagError, FlagSet
from nomadd.server.raft_recover import RecoverError, recover
from nomadd.structs.errors import ConfigError

USAGE = "nomadd operator raft recover -peers=<ip:port>[,<ip:port>...] (-config=<path> | -data-dir=<dir>)"


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def _parse(fs: FlagSet, args: list[str]) -> tuple[dict[str, object], list[str]] | None:
    try:
        return fs.parse(args)
    except FlagError as err:
        if str(err) != "help requested":
            print(err, file=sys.stderr)
        print(f"Usage: {USAGE}\n\nOptions:\n\n{fs.usage()}", file=sys.stderr)
        return None


def _listening(addr: str) -> bool:
    try:
        with socket.create_connection(split_host_port(addr), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def run(args: list[str]) -> int:
    fs = FlagSet("operator raft recover")
    fs.strings(
        "peers",
        "The raft addresses (IP:port) of the servers of the new cluster, this one included.",
        split=",",
    )
    fs.strings("config", "The server's config file or directory (repeatable).")
    fs.string("data-dir", "The agent's data_dir (instead of -config).")
    parsed = _parse(fs, args)
    if parsed is None:
        return 1
    opts, rest = parsed
    if rest:
        return _fail(f"This command takes no arguments\nUsage: {USAGE}")
    peers = [str(p) for p in opts.get("peers", ())]  # type: ignore[attr-defined]
    if not peers:
        return _fail(f"Error: -peers is required\nUsage: {USAGE}")
    configs = tuple(str(c) for c in opts.get("config", ()))  # type: ignore[attr-defined]
    data_dir = str(opts.get("data-dir") or "")
    if bool(configs) == bool(data_dir):
        return _fail(f"Error: give exactly one of -config or -data-dir\nUsage: {USAGE}")
    if configs:
        try:
            cfg, _ = load_config(ConfigSources(paths=configs))
        except ConfigError as err:
            return _fail(f"Error loading configuration: {err}")
        if not cfg.server.enabled or not cfg.server.data_dir:
            return _fail("Error: the configuration is not a server's (server.enabled, data_dir)")
        raft_dir = Path(cfg.server.data_dir) / "raft"
        self_addr = cfg.advertise.raft
        if self_addr not in peers:
            return _fail(f"Error: this server's raft address {self_addr} is not in -peers")
        if _listening(self_addr):
            return _fail(f"Error: something listens on {self_addr}: stop the server first")
    else:
        raft_dir = Path(data_dir) / "server" / "raft"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    try:
        result = recover(raft_dir, peers)
    except RecoverError as err:
        return _fail(f"Error recovering raft state: {err}")
    except OSError as err:
        return _fail(f"Error recovering raft state in {raft_dir}: {err}")
    print(f"Recovered raft state in {raft_dir}")
    print(f"  last index {result.index}, term {result.term}")
    print(f"  {result.replayed} journal entries replayed on the dump at index {result.dump_index}")
    print(f"  peers: {', '.join(result.peers)}")
    print(f"  the previous state is kept in {result.backup}")
    print("Start this server (and the other listed peers, each recovered the same way or empty).")
    return 0

"""mDNS discovery with zeroconf (issue 5 acceptance 3 at the library level, and 5 for mdns://).

* loopback: announcers and browser in this process, pinned to 127.0.0.1 (works on Linux, see
  docs/contributing/dependencies.md §zeroconf); each test uses its own region so parallel runs do not see each other.
* network namespaces (root): announcers in one namespace, the browser (`nomadd operator
  discover`) in another, joined by a veth pair the test creates and deletes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nomadd.cli.operator_discover import run as discover
from nomadd.discovery import DiscoveryError, MdnsAnnouncer, Resolver, retry_join
from nomadd.structs.errors import ConfigError

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = ["127.0.0.1"]
WINDOW_S = 1.5


def _ports(base: int) -> dict[str, int]:
    return {"http": base, "raft": base + 1, "serf": base + 2}


def test_announce_browse_filter_and_withdraw_on_loopback() -> None:
    region = f"r{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        a = MdnsAnnouncer("srv-a", region, "dc1", "server", "127.0.0.1", _ports(14646),
                          interfaces=LOOPBACK)  # fmt: skip
        b = MdnsAnnouncer("srv-b", region, "dc2", "server", "127.0.0.1", _ports(24646),
                          interfaces=LOOPBACK)  # fmt: skip
        other = MdnsAnnouncer("srv-c", region + "x", "dc1", "server", "127.0.0.1",
                              _ports(34646), interfaces=LOOPBACK)  # fmt: skip
        client = MdnsAnnouncer("cli-d", region, "dc1", "client", "127.0.0.1", _ports(44646),
                               interfaces=LOOPBACK)  # fmt: skip
        r = Resolver(region=region, mdns_interfaces=LOOPBACK, mdns_window=WINDOW_S)
        await asyncio.gather(a.start(), b.start(), other.start(), client.start())
        try:
            # All browses at once (each opens its own zeroconf): one window instead of five.
            out, err = io.StringIO(), io.StringIO()
            args = [f"-region={region}", "-port-kind=http", "-timeout=2s", "mdns://"]
            serf, http, raft, theirs, code = await asyncio.gather(
                r.resolve("mdns://"),
                r.resolve("mdns://", port_kind="http"),
                r.resolve("mdns://?dc=dc2", port_kind="raft"),
                r.resolve(f"mdns://?region={region}x"),
                asyncio.to_thread(discover, args, stdout=out, stderr=err),
            )
            # servers of our region only (not the other region, not the client), sorted by name
            assert serf == ["127.0.0.1:14648", "127.0.0.1:24648"]
            assert http == ["127.0.0.1:14646", "127.0.0.1:24646"]
            assert raft == ["127.0.0.1:24647"]
            assert theirs == ["127.0.0.1:34648"]
            # the CLI browses every interface, 127.0.0.1 included
            assert (code, err.getvalue()) == (0, "")
            assert out.getvalue().splitlines() == ["127.0.0.1:14646", "127.0.0.1:24646"]
            await a.stop()
            await a.stop()  # idempotent
            assert await r.resolve("mdns://") == ["127.0.0.1:24648"]
            await b.stop()
            start = time.monotonic()
            with pytest.raises(DiscoveryError, match=f"no server of region={region}"):
                await r.resolve("mdns://")
            assert time.monotonic() - start < r.lifetime + 2
        finally:
            await asyncio.gather(a.stop(), b.stop(), other.stop(), client.stop())

    asyncio.run(main())


def test_retry_join_finds_a_server_announced_later(caplog: pytest.LogCaptureFixture) -> None:
    """The first attempt finds nothing; the announcement that appears meanwhile is joined."""
    region = f"r{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.INFO, logger="nomadd.discovery")

    async def main() -> int:
        r = Resolver(region=region, mdns_interfaces=LOOPBACK, mdns_window=1.0)
        joined: list[list[str]] = []

        async def join(addresses: list[str]) -> int:
            joined.append(addresses)
            return len(addresses)

        announcer = MdnsAnnouncer("late", region, "dc1", "server", "127.0.0.1", _ports(54646),
                                  interfaces=LOOPBACK)  # fmt: skip
        task = asyncio.create_task(retry_join(["mdns://"], join, resolver=r, interval=0.1, max_attempts=20))
        try:
            deadline = time.monotonic() + 5
            while not any("join failed" in m for m in caplog.messages):
                assert time.monotonic() < deadline, "no failed attempt before the announcement"
                await asyncio.sleep(0.05)
            await announcer.start()
            n = await asyncio.wait_for(task, 15)
        finally:
            task.cancel()
            await announcer.stop()
        assert joined == [["127.0.0.1:54648"]]
        return n

    assert asyncio.run(main()) == 1
    assert any("retry join completed initial_servers=1" in m for m in caplog.messages)


def test_announcer_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="IPv4"):
        MdnsAnnouncer("s", "global", "dc1", "server", "fd00::1", _ports(1))
    with pytest.raises(ConfigError, match="unspecified"):
        MdnsAnnouncer("s", "global", "dc1", "server", "0.0.0.0", _ports(1))
    with pytest.raises(ConfigError, match="serf"):
        MdnsAnnouncer("s", "global", "dc1", "server", "10.0.0.1", {"http": 1, "raft": 2})


# --- network namespaces -----------------------------------------------------------------------

ANNOUNCER = """
import asyncio, signal, sys
from nomadd.discovery import MdnsAnnouncer

async def main():
    name, region, address, base = sys.argv[1:5]
    base = int(base)
    announcer = MdnsAnnouncer(name, region, "dc1", "server", address,
                              {"http": base, "raft": base + 1, "serf": base + 2})
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await announcer.start()
    print("ready", flush=True)
    await stop.wait()
    await announcer.stop()
    print("stopped", flush=True)

asyncio.run(main())
"""


def _need_root() -> None:
    reason = ""
    if os.geteuid() != 0:
        reason = "needs root for network namespaces"
    elif shutil.which("ip") is None:
        reason = "needs iproute2 (ip)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " and CI=true")
        pytest.skip(reason)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str, str]]:
    """Namespaces (servers, browser) joined by veth; 10.<x>.<y>.1/.3/.4 on the servers' side."""
    _need_root()
    tag = f"{os.getpid() % 100000}{uuid.uuid4().hex[:3]}"
    ns_a, ns_b, veth_a, veth_b = f"nd5a{tag}", f"nd5b{tag}", f"nd5a{tag}", f"nd5b{tag}"
    net = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
    created: list[str] = []
    try:
        for ns in (ns_a, ns_b):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip("link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        _ip("link", "set", veth_a, "netns", ns_a)
        _ip("link", "set", veth_b, "netns", ns_b)
        for host in (1, 3, 4):
            _ip("-n", ns_a, "addr", "add", f"{net}.{host}/24", "dev", veth_a)
        _ip("-n", ns_b, "addr", "add", f"{net}.2/24", "dev", veth_b)
        for ns, dev in ((ns_a, veth_a), (ns_b, veth_b)):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield ns_a, ns_b, net
    finally:
        for ns in created:  # deleting a namespace deletes its end of the veth pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    return env


def _wait_line(proc: subprocess.Popen[str], want: str, timeout: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.05)
        if ready:
            line = proc.stdout.readline()
            if line.strip() == want:
                return
            if not line and proc.poll() is not None:
                break
    raise AssertionError(f"process {proc.args!r} did not print {want!r} in {timeout}s")


def _browse(ns: str, region: str, port_kind: str) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", ns, sys.executable, "-m", "nomadd.cli.operator_discover",
            f"-region={region}", f"-port-kind={port_kind}", "-timeout=2s", "mdns://"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, env=_env())


@pytest.mark.root
def test_mdns_across_network_namespaces(two_namespaces: tuple[str, str, str]) -> None:
    ns_servers, ns_browser, net = two_namespaces
    region = f"r{uuid.uuid4().hex[:8]}"
    specs = [("s1", region, f"{net}.1", 4646), ("s3", region, f"{net}.3", 5646),
             ("s4", region, f"{net}.4", 6646), ("x1", region + "x", f"{net}.1", 7646)]  # fmt: skip
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, reg, address, base in specs:
            procs[name] = subprocess.Popen(
                ["ip", "netns", "exec", ns_servers, sys.executable, "-c", ANNOUNCER,
                 name, reg, address, str(base)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
            )  # fmt: skip
        for proc in procs.values():
            _wait_line(proc, "ready", 15)

        with ThreadPoolExecutor(max_workers=3) as pool:
            found, http, other = pool.map(
                lambda args: _browse(ns_browser, *args),
                [(region, "serf"), (region, "http"), (region + "x", "serf")],
            )
        assert (found.returncode, found.stderr) == (0, "")
        assert found.stdout.splitlines() == [f"{net}.1:4648", f"{net}.3:5648", f"{net}.4:6648"]
        assert http.stdout.splitlines() == [f"{net}.1:4646", f"{net}.3:5646", f"{net}.4:6646"]
        assert other.stdout.splitlines() == [f"{net}.1:7648"]

        procs["s3"].send_signal(signal.SIGTERM)  # leave: the announcer withdraws
        _wait_line(procs["s3"], "stopped", 10)
        with ThreadPoolExecutor(max_workers=2) as pool:
            after, missing = pool.map(
                lambda args: _browse(ns_browser, *args), [(region, "serf"), ("nowhere", "serf")]
            )
        assert after.stdout.splitlines() == [f"{net}.1:4648", f"{net}.4:6648"]
        assert missing.returncode == 1
        assert "no server of region=nowhere" in missing.stderr
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()

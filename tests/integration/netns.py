"""Network-namespace lab for fault tests (root only): N "hosts" on one private L2 segment.

``NetnsLab(n)`` creates a bridge namespace and ``n`` host namespaces, each joined to the bridge
by a veth pair, with addresses ``10.<a>.<b>.1..n/24`` (a random /24, only ever visible inside
these namespaces). :meth:`partition` cuts a host off (its bridge-side veth goes down),
:meth:`heal` reconnects it. :meth:`close` (call it in ``finally``) deletes every namespace it
created, which also removes their veths. Nothing touches the root namespace's interfaces.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["NetnsLab", "netns_http", "netns_request"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class NetnsLab:
    def __init__(self, hosts: int) -> None:
        tag = secrets.token_hex(3)
        self.bridge_ns = f"nmdbr{tag}"
        self.hosts = [f"nmd{tag}h{i}" for i in range(hosts)]
        octets = secrets.randbelow(200) + 20, secrets.randbelow(250) + 1
        self.ips = [f"10.{octets[0]}.{octets[1]}.{i + 1}" for i in range(hosts)]
        self._created: list[str] = []
        self._peers = [f"vb{tag}{i}" for i in range(hosts)]  # bridge-side veth names
        self._relays: list[subprocess.Popen[str]] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        _ip("netns", "add", self.bridge_ns)
        self._created.append(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for i, ns in enumerate(self.hosts):
            _ip("netns", "add", ns)
            self._created.append(ns)
            peer = self._peers[i]
            # create the pair inside the host namespace, then move the peer to the bridge ns
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer)
            _ip("-n", ns, "link", "set", peer, "netns", self.bridge_ns)
            _ip("-n", ns, "addr", "add", f"{self.ips[i]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.bridge_ns, "link", "set", peer, "master", "br0")
            _ip("-n", self.bridge_ns, "link", "set", peer, "up")

    def partition(self, host: int) -> None:
        _ip("-n", self.bridge_ns, "link", "set", self._peers[host], "down")

    def heal(self, host: int) -> None:
        _ip("-n", self.bridge_ns, "link", "set", self._peers[host], "up")

    def delay(self, group_a: Sequence[int], group_b: Sequence[int], ms: int) -> str:
        """Delay every packet between a host of ``group_a`` and one of ``group_b`` by ``ms``
        each way; returns how ("tc netem" or "tap relay").

        With netem in the kernel: on each host's eth0 an htb class holding ``tc netem``, which
        u32 filters send the other group's destinations to. Without it (CONFIG_NET_SCH_NETEM is
        not set on some kernels, e.g. these Firecracker VMs): ``group_b`` moves to a second
        bridge, and the two bridges are joined only through a pair of TAP devices whose frames a
        relay process copies across after ``ms`` (:data:`_RELAY`), so the segment stays one L2
        network (ARP included) with the delay on every frame between the groups."""
        probe = ["tc", "-n", self.hosts[group_a[0]], "qdisc", "add", "dev", "eth0", "root", "netem"]
        if subprocess.run([*probe, "delay", f"{ms}ms"], capture_output=True).returncode != 0:
            self._relay_delay(group_b, ms)
            return "tap relay"
        subprocess.run(
            ["tc", "-n", self.hosts[group_a[0]], "qdisc", "del", "dev", "eth0", "root"], check=True
        )
        for mine, theirs in ((group_a, group_b), (group_b, group_a)):
            for host in mine:
                dev = ["dev", "eth0"]
                filt = ["filter", "add", *dev, "parent", "1:", "protocol", "ip", "u32"]
                for args in (
                    ["qdisc", "add", *dev, "root", "handle", "1:", "htb", "default", "1"],
                    ["class", "add", *dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit"],
                    ["class", "add", *dev, "parent", "1:", "classid", "1:2", "htb", "rate", "10gbit"],
                    ["qdisc", "add", *dev, "parent", "1:2", "handle", "20:", "netem", "delay", f"{ms}ms"],
                    *(
                        [*filt, "match", "ip", "dst", f"{self.ips[other]}/32", "flowid", "1:2"]
                        for other in theirs
                    ),
                ):
                    subprocess.run(["tc", "-n", self.hosts[host], *args], check=True, capture_output=True)
        return "tc netem"

    def _relay_delay(self, group_b: Sequence[int], ms: int) -> None:
        ns = self.bridge_ns
        _ip("-n", ns, "link", "add", "br1", "type", "bridge")
        _ip("-n", ns, "link", "set", "br1", "up")
        for host in group_b:
            _ip("-n", ns, "link", "set", self._peers[host], "master", "br1")
        relay = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", _RELAY, str(ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._relays.append(relay)
        assert relay.stdout is not None
        if relay.stdout.readline().strip() != "ready":  # the TAP devices exist
            raise RuntimeError("the delay relay did not start")
        for tap, bridge in (("tapa", "br0"), ("tapb", "br1")):
            _ip("-n", ns, "link", "set", tap, "master", bridge)
            _ip("-n", ns, "link", "set", tap, "up")

    def wrap(self, host: int) -> list[str]:
        """Command prefix that runs a program inside host ``host``'s namespace."""
        return ["ip", "netns", "exec", self.hosts[host]]

    def close(self) -> None:
        for relay in self._relays:
            relay.kill()
            relay.wait(timeout=10)
            if relay.stdout is not None:
                relay.stdout.close()
        self._relays.clear()
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        self._created.clear()


# Two TAP devices (tapa, tapb) whose Ethernet frames are copied to the other one argv[1] ms
# after they arrive: a delay line between two bridges, in userspace, for kernels without netem.
_RELAY = r"""
import fcntl, heapq, os, select, struct, sys, time
delay = int(sys.argv[1]) / 1000.0
def tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", name.encode(), 0x0002 | 0x1000))  # TUNSETIFF: TAP, NO_PI
    return fd
a, b = tap("tapa"), tap("tapb")
other = {a: b, b: a}
print("ready", flush=True)
queue, seq = [], 0
while True:
    timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
    ready, _, _ = select.select([a, b], [], [], timeout)
    for fd in ready:
        frame = os.read(fd, 65536)
        seq += 1
        heapq.heappush(queue, (time.monotonic() + delay, seq, other[fd], frame))
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        _, _, out, frame = heapq.heappop(queue)
        try:
            os.write(out, frame)
        except OSError:
            pass
"""

_HTTP_SCRIPT = r"""
import json, sys, urllib.request, urllib.error
method, url, body, timeout, headers = json.loads(sys.argv[1])
req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method, headers=headers)
try:
    with urllib.request.urlopen(req, timeout=timeout) as r:
        print(json.dumps({"status": r.status, "headers": dict(r.headers), "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "headers": dict(e.headers), "body": e.read().decode()}))
except Exception as e:
    print(json.dumps({"status": 0, "headers": {}, "body": repr(e)}))
"""


def netns_request(
    wrap: Sequence[str],
    method: str,
    url: str,
    body: Any = None,
    params: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    """An HTTP request made from inside a namespace: ``(status, headers, body)``; status 0 = no
    answer."""
    if params:
        import urllib.parse

        url += "?" + urllib.parse.urlencode(params)
    arg = json.dumps([method, url, body, timeout, dict(headers or {})])
    out = subprocess.run(
        [*wrap, sys.executable, "-I", "-c", _HTTP_SCRIPT, arg],
        capture_output=True,
        text=True,
        timeout=timeout + 10,
    )
    if out.returncode != 0:
        return 0, {}, out.stderr
    reply = json.loads(out.stdout)
    return int(reply["status"]), dict(reply["headers"]), str(reply["body"])


def netns_http(
    wrap: Sequence[str],
    method: str,
    url: str,
    body: Any = None,
    params: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, str]:
    """An HTTP request made from inside a namespace: ``(status, body)``; status 0 = no answer."""
    status, _, text = netns_request(wrap, method, url, body, params, timeout)
    return status, text

"""``host:port`` addresses as the agents advertise them (IPv6 hosts in brackets)."""

from __future__ import annotations

__all__ = ["split_host_port"]


def split_host_port(addr: str) -> tuple[str, int]:
    """``"10.0.0.1:4647"`` → ``("10.0.0.1", 4647)``; ``"[::1]:4646"`` → ``("::1", 4646)``.
    ValueError when the port is not a number."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)

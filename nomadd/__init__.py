"""nomadd: a Nomad-style cluster agent (Raft servers, gossip, clients that run tasks)."""

from __future__ import annotations

__version__ = "0.2.0"
VERSION = f"v{__version__}"

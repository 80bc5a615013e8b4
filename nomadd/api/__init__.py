"""The HTTP SDK the CLI uses. It imports nothing else from nomadd (a test enforces it)."""

from __future__ import annotations

from nomadd.api.client import DEFAULT_ADDRESS, APIError, Client, QueryMeta

__all__ = ["DEFAULT_ADDRESS", "APIError", "Client", "QueryMeta"]

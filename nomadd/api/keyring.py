"""``/v1/operator/keyring/*`` (Nomad's api/keyring.go): the servers' root keyring."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client

__all__ = ["GossipKeyring", "Keyring"]


class Keyring:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list_keys(self) -> list[dict[str, Any]]:
        """``[{KeyID, Algorithm, CreateTime, State}]``, oldest first."""
        value, _ = self._c.get("/v1/operator/keyring/keys")
        return cast(list[dict[str, Any]], value or [])

    def rotate(self) -> dict[str, Any]:
        """Make a new active root key; returns it (``{KeyID, Algorithm, CreateTime, State}``)."""
        value, _ = self._c.put("/v1/operator/keyring/rotate")
        return cast(dict[str, Any], cast(dict[str, Any], value or {}).get("Key") or {})


class GossipKeyring:
    """``/v1/agent/keyring/*`` (Nomad's api/agent.go ``ListKeys``, ``InstallKey``, ...)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def list_keys(self) -> dict[str, Any]:
        """``{Messages, Keys: {key: servers holding it}, NumNodes}``."""
        value, _ = self._c.get("/v1/agent/keyring/list")
        return cast(dict[str, Any], value or {})

    def install(self, key: str) -> None:
        self._c.put("/v1/agent/keyring/install", {"Key": key})

    def use(self, key: str) -> None:
        self._c.put("/v1/agent/keyring/use", {"Key": key})

    def remove(self, key: str) -> None:
        self._c.put("/v1/agent/keyring/remove", {"Key": key})

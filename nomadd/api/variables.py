"""Nomad Variables: ``/v1/vars``, ``/v1/var/:path`` (Nomad's api/variables.go)."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import APIError, Client, QueryMeta

__all__ = ["VariableConflictError", "Variables"]


class VariableConflictError(Exception):
    """A check-and-set write lost: ``current`` is the variable now stored (or None)."""

    def __init__(self, current: dict[str, Any] | None) -> None:
        super().__init__("variable check-and-set conflict")
        self.current = current


class Variables:
    def __init__(self, client: Client) -> None:
        self._c = client

    def list(self, prefix: str = "", namespace: str = "") -> tuple[list[dict[str, Any]], QueryMeta]:
        params = {"prefix": prefix}
        if namespace:
            params["namespace"] = namespace
        value, meta = self._c.get("/v1/vars", params)
        return cast(list[dict[str, Any]], value or []), meta

    def read(self, path: str, namespace: str = "") -> tuple[dict[str, Any], QueryMeta]:
        value, meta = self._c.get(f"/v1/var/{path}", {"namespace": namespace} if namespace else {})
        return cast(dict[str, Any], value), meta

    def put(
        self, path: str, items: dict[str, str], cas: int | None = None, namespace: str = ""
    ) -> dict[str, Any]:
        params: dict[str, str | int] = {}
        if cas is not None:
            params["cas"] = cas
        body: dict[str, Any] = {"Path": path, "Items": items}
        if namespace:
            body["Namespace"] = namespace
        try:
            value, _ = self._c.put(f"/v1/var/{path}", body, params)
        except APIError as err:
            if err.status == 409:
                raise VariableConflictError(_json_or_none(err.message)) from None
            raise
        return cast(dict[str, Any], value)

    def delete(self, path: str, cas: int | None = None, namespace: str = "") -> None:
        params: dict[str, str | int] = {}
        if cas is not None:
            params["cas"] = cas
        if namespace:
            params["namespace"] = namespace
        try:
            self._c.delete(f"/v1/var/{path}", params)
        except APIError as err:
            if err.status == 409:
                raise VariableConflictError(_json_or_none(err.message)) from None
            raise


def _json_or_none(text: str) -> dict[str, Any] | None:
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

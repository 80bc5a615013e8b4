"""The HTTP SDK transport: stdlib ``urllib`` only, so the CLI starts fast.

``Client.get`` returns the decoded JSON and a ``QueryMeta`` read from Nomad's headers;
``put``/``post``/``delete`` send JSON bodies. Errors are ``APIError(status, message)`` with the
server's plain-text message. The address comes from ``NOMAD_ADDR`` by default, the token from
``NOMAD_TOKEN``, as Nomad's api package does.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message

__all__ = ["DEFAULT_ADDRESS", "APIError", "Client", "QueryMeta"]

DEFAULT_ADDRESS = "http://127.0.0.1:4646"
Params = Mapping[str, str | int | bool | Sequence[str]]


class APIError(Exception):
    """The agent answered with an error status, or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Unexpected response code: {status} ({message})" if status else message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class QueryMeta:
    index: int = 0
    known_leader: bool = False
    last_contact_ms: int = 0


class Client:
    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        region: str | None = None,
        timeout_s: float = 330.0,
    ) -> None:
        addr = address or os.environ.get("NOMAD_ADDR") or DEFAULT_ADDRESS
        if "://" not in addr:
            addr = "http://" + addr
        self.address = addr.rstrip("/")
        self.token = token if token is not None else os.environ.get("NOMAD_TOKEN", "")
        self.region = region if region is not None else os.environ.get("NOMAD_REGION", "")
        self.timeout_s = timeout_s

    def get(self, path: str, params: Params | None = None) -> tuple[object, QueryMeta]:
        return self._do("GET", path, params, None)

    def put(self, path: str, body: object = None, params: Params | None = None) -> tuple[object, QueryMeta]:
        return self._do("PUT", path, params, body)

    def post(self, path: str, body: object = None, params: Params | None = None) -> tuple[object, QueryMeta]:
        return self._do("POST", path, params, body)

    def delete(self, path: str, params: Params | None = None) -> tuple[object, QueryMeta]:
        return self._do("DELETE", path, params, None)

    def url(self, path: str, params: Params | None = None) -> str:
        query: list[tuple[str, str]] = []
        for k, v in (params or {}).items():
            if isinstance(v, bool):
                query.append((k, "true" if v else "false"))
            elif isinstance(v, str | int):
                query.append((k, str(v)))
            else:
                query.extend((k, str(x)) for x in v)
        if self.region and not any(k == "region" for k, _ in query):
            query.append(("region", self.region))
        qs = urllib.parse.urlencode(query)
        return f"{self.address}{path}" + (f"?{qs}" if qs else "")

    def raw(
        self, method: str, path: str, params: Params | None, data: bytes | None, content_type: str = ""
    ) -> tuple[bytes, Message]:
        """One request with a bytes body; the answer's bytes and headers (APIError on failure)."""
        req = urllib.request.Request(self.url(path, params), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type or "application/octet-stream")
        if self.token:
            req.add_header("X-Nomad-Token", self.token)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read(), resp.headers
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace").strip()
            raise APIError(err.code, text or err.reason) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise APIError(0, f"Error querying agent at {self.address}: {reason}") from None

    def _do(self, method: str, path: str, params: Params | None, body: object) -> tuple[object, QueryMeta]:
        data = None if body is None else json.dumps(body).encode()
        raw, headers = self.raw(method, path, params, data, "application/json")
        meta = QueryMeta(
            index=int(headers.get("X-Nomad-Index", "0") or 0),
            known_leader=headers.get("X-Nomad-KnownLeader", "false") == "true",
            last_contact_ms=int(headers.get("X-Nomad-LastContact", "0") or 0),
        )
        if not raw:
            return None, meta
        try:
            return json.loads(raw), meta
        except ValueError:
            return raw.decode(errors="replace"), meta

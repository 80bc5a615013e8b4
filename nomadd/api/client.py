"""The HTTP SDK transport: stdlib ``urllib`` only, so the CLI starts fast.

``Client.get`` returns the decoded JSON and a ``QueryMeta`` read from Nomad's headers;
``put``/``post``/``delete`` send JSON bodies. Errors are ``APIError(status, message)`` with the
server's plain-text message. The address comes from ``NOMAD_ADDR`` by default, the token from
``NOMAD_TOKEN``, as Nomad's api package does.

TLS (an ``https://`` address), as Nomad's api package: ``NOMAD_CACERT`` (a PEM file) or
``NOMAD_CAPATH`` (a directory) to trust, ``NOMAD_CLIENT_CERT`` + ``NOMAD_CLIENT_KEY`` to present
(the agent asks for one with ``verify_https_client``), ``NOMAD_TLS_SERVER_NAME`` to check a name
other than the address's host (e.g. ``server.global.nomad``), ``NOMAD_SKIP_VERIFY`` to check
nothing. A ``TLSOptions`` passed to ``Client`` replaces the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any, BinaryIO

__all__ = ["DEFAULT_ADDRESS", "APIError", "Client", "QueryMeta", "TLSOptions"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSOptions:
    ca_cert: str = ""
    ca_path: str = ""
    client_cert: str = ""
    client_key: str = ""
    server_name: str = ""
    skip_verify: bool = False

    @classmethod
    def from_env(cls) -> TLSOptions:
        env = os.environ
        return cls(
            ca_cert=env.get("NOMAD_CACERT", ""),
            ca_path=env.get("NOMAD_CAPATH", ""),
            client_cert=env.get("NOMAD_CLIENT_CERT", ""),
            client_key=env.get("NOMAD_CLIENT_KEY", ""),
            server_name=env.get("NOMAD_TLS_SERVER_NAME", ""),
            skip_verify=env.get("NOMAD_SKIP_VERIFY", "").lower() in ("1", "true", "t", "yes"),
        )

    def context(self) -> ssl.SSLContext:
        """The client context these options describe (``APIError`` when a file is unusable)."""
        ctx: ssl.SSLContext = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if self.ca_cert or self.ca_path:
                ctx.load_verify_locations(cafile=self.ca_cert or None, capath=self.ca_path or None)
            else:
                ctx.load_default_certs()
            if self.client_cert or self.client_key:
                if not (self.client_cert and self.client_key):
                    raise APIError(0, "NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY must be given together")
                ctx.load_cert_chain(self.client_cert, self.client_key)
        except (OSError, ssl.SSLError) as err:
            raise APIError(0, f"Error loading TLS files: {err}") from None
        if self.skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.server_name:
            assert isinstance(ctx, _NamedContext)
            ctx.server_name = self.server_name
        return ctx


class _NamedContext(ssl.SSLContext):
    """Checks ``server_name`` instead of the URL's host (``NOMAD_TLS_SERVER_NAME``)."""

    server_name = ""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        if self.server_name:
            kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


class Client:
    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        region: str | None = None,
        timeout_s: float = 330.0,
        tls: TLSOptions | None = None,
        namespace: str | None = None,
    ) -> None:
        addr = address or os.environ.get("NOMAD_ADDR") or DEFAULT_ADDRESS
        if "://" not in addr:
            addr = "http://" + addr
        self.address = addr.rstrip("/")
        self.token = token if token is not None else os.environ.get("NOMAD_TOKEN", "")
        self.region = region if region is not None else os.environ.get("NOMAD_REGION", "")
        self.namespace = namespace if namespace is not None else os.environ.get("NOMAD_NAMESPACE", "")
        self.timeout_s = timeout_s
        self.tls = tls if tls is not None else TLSOptions.from_env()
        self._ssl: ssl.SSLContext | None = None

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
        if self.namespace and not any(k == "namespace" for k, _ in query):
            query.append(("namespace", self.namespace))
        qs = urllib.parse.urlencode(query)
        return f"{self.address}{path}" + (f"?{qs}" if qs else "")

    def open(self, req: urllib.request.Request, timeout: float | None) -> Any:
        """``urlopen`` with this client's TLS settings (for an https address)."""
        if not self.address.startswith("https://"):
            return urllib.request.urlopen(req, timeout=timeout)
        if self._ssl is None:
            self._ssl = self.tls.context()
        return urllib.request.urlopen(req, timeout=timeout, context=self._ssl)

    def raw(
        self,
        method: str,
        path: str,
        params: Params | None,
        data: bytes | BinaryIO | None,
        content_type: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[bytes, Message]:
        """One request with a bytes body (or a file, sent as it is read: give its
        Content-Length in ``headers``); the answer's bytes and headers (APIError on failure)."""
        req = urllib.request.Request(self.url(path, params), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type or "application/octet-stream")
        if self.token:
            req.add_header("X-Nomad-Token", self.token)
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        with self._api_errors(), self.open(req, self.timeout_s) as resp:
            return resp.read(), resp.headers

    @contextlib.contextmanager
    def _api_errors(self) -> Iterator[None]:
        """An error answer or a failed connection inside the ``with`` raised as an APIError."""
        try:
            yield
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace").strip()
            raise APIError(err.code, text or err.reason) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise APIError(0, f"Error querying agent at {self.address}: {reason}") from None

    @contextlib.contextmanager
    def stream(self, path: str, params: Params | None = None) -> Iterator[tuple[Any, Message]]:
        """A GET whose answer the caller reads piece by piece (``resp.read(n)``) inside the
        ``with``, and its headers; APIError if it fails before the body."""
        req = urllib.request.Request(self.url(path, params), method="GET")
        if self.token:
            req.add_header("X-Nomad-Token", self.token)
        with self._api_errors():
            resp = self.open(req, self.timeout_s)
        with resp:
            yield resp, resp.headers

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

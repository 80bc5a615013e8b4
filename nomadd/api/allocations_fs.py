"""Allocation file-system reads on the client agents (Nomad's api/fs.go): ``/v1/client/fs/logs``,
``ls``, ``stat``, ``cat``, ``readat`` and ``stream``, and ``/v1/client/allocation/:id/signal``.

:meth:`AllocFS.logs` streams the task's log bytes (``plain=true``) as an iterator of chunks; with
``follow`` it ends when the task is dead and its log is drained (or the caller stops reading).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, cast

from nomadd.api.client import APIError, Client

__all__ = ["AllocFS"]

CHUNK_BYTES = 32 * 1024


class AllocFS:
    def __init__(self, client: Client) -> None:
        self._c = client

    def ls(self, alloc_id: str, path: str = "/") -> list[dict[str, Any]]:
        value, _ = self._c.get(f"/v1/client/fs/ls/{alloc_id}", {"path": path})
        return cast(list[dict[str, Any]], value or [])

    def stat(self, alloc_id: str, path: str) -> dict[str, Any]:
        value, _ = self._c.get(f"/v1/client/fs/stat/{alloc_id}", {"path": path})
        return cast(dict[str, Any], value or {})

    def cat(self, alloc_id: str, path: str) -> bytes:
        data, _ = self._c.raw("GET", f"/v1/client/fs/cat/{alloc_id}", {"path": path}, None)
        return data

    def read_at(self, alloc_id: str, path: str, offset: int, limit: int) -> bytes:
        params: dict[str, str | int | bool] = {"path": path, "offset": offset, "limit": limit}
        data, _ = self._c.raw("GET", f"/v1/client/fs/readat/{alloc_id}", params, None)
        return data

    def logs(
        self,
        alloc_id: str,
        task: str,
        *,
        stderr: bool = False,
        follow: bool = False,
        origin: str = "start",
        offset: int = 0,
    ) -> Iterator[bytes]:
        params: dict[str, str | int | bool] = {
            "task": task,
            "type": "stderr" if stderr else "stdout",
            "follow": follow,
            "origin": origin,
            "offset": offset,
            "plain": True,
        }
        yield from self._chunks(f"/v1/client/fs/logs/{alloc_id}", params, follow)

    def stream(self, alloc_id: str, path: str, *, offset: int = 0, origin: str = "start") -> Iterator[bytes]:
        """A file's bytes as they are written (``/v1/client/fs/stream``, Nomad's StreamFrames
        decoded); ends when the file is deleted or the allocation is finished."""
        params: dict[str, str | int | bool] = {"path": path, "offset": offset, "origin": origin}
        decoder = json.JSONDecoder()
        buf = ""
        for chunk in self._chunks(f"/v1/client/fs/stream/{alloc_id}", params, True):
            buf += chunk.decode()
            while True:
                buf = buf.lstrip()
                try:
                    frame, end = decoder.raw_decode(buf)
                except ValueError:
                    break  # an incomplete frame: wait for the rest
                buf = buf[end:]
                if isinstance(frame, dict) and frame.get("Data"):
                    yield base64.b64decode(frame["Data"])

    def _chunks(self, path: str, params: dict[str, str | int | bool], follow: bool) -> Iterator[bytes]:
        req = urllib.request.Request(self._c.url(path, params))
        if self._c.token:
            req.add_header("X-Nomad-Token", self._c.token)
        try:
            resp = self._c.open(req, None if follow else self._c.timeout_s)
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace").strip()
            raise APIError(err.code, text or err.reason) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise APIError(0, f"Error querying agent at {self._c.address}: {reason}") from None
        with resp:
            while True:
                chunk = resp.read1(CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk

    def signal(self, alloc_id: str, task: str = "", signal: str = "SIGKILL") -> dict[str, Any]:
        value, _ = self._c.post(f"/v1/client/allocation/{alloc_id}/signal", {"Task": task, "Signal": signal})
        return cast(dict[str, Any], value or {})

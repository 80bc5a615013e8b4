"""A job without an ``update {}`` strategy has no deployments: Nomad's answer, ``[]``, never a
404, which clients that follow a job (nomad-tools' ``watch``) take for an error and exit on."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from aiohttp.test_utils import TestClient, TestServer

from nomadd.agent.config import AgentConfig
from nomadd.agent.http.server import HTTPServer
from tests.unit.server.fakes import FakeServer, api_job


def test_job_deployments_are_empty_with_the_index_of_the_job() -> None:
    async def main() -> None:
        fake = FakeServer()
        agent = SimpleNamespace(
            server=fake, client=None, acl=fake.ctx.acl, config=AgentConfig(), reload_hook=None, tls=None
        )
        async with TestClient(TestServer(HTTPServer(agent).app)) as client:  # type: ignore[arg-type]
            reg = await client.put("/v1/jobs", json={"Job": api_job("web")})
            assert reg.status == 200, await reg.text()
            index = (await reg.json())["JobModifyIndex"]
            resp = await client.get("/v1/job/web/deployments")
            assert resp.status == 200, await resp.text()
            assert json.loads(await resp.text()) == []
            assert int(resp.headers["X-Nomad-Index"]) >= index
            # Nomad lists a job's deployments by its ID without looking the job up: no 404.
            resp = await client.get("/v1/job/nope/deployments")
            assert resp.status == 200 and await resp.json() == []

    asyncio.run(main())

"""``GET /v1/event/stream`` through the real route table (in-process, one FakeServer): frames,
heartbeats, the server closing a subscription, and the per-topic ACL checks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nomadd.agent.config import AgentConfig
from nomadd.agent.http import event_endpoint
from nomadd.agent.http.server import HTTPServer
from nomadd.structs.config import ACLConfig
from nomadd.structs.requests.acl import ACL_BOOTSTRAP, ACLBootstrapRequest
from tests.unit.server.fakes import FakeServer, api_job, wait_until

Test = Callable[[FakeServer, TestClient, str], Awaitable[None]]


def run(test: Test, *, acl: bool = False) -> None:
    async def main() -> None:
        fake = FakeServer(acl=ACLConfig(enabled=acl))
        agent = SimpleNamespace(
            server=fake, client=None, acl=fake.ctx.acl, config=AgentConfig(), reload_hook=None, tls=None
        )
        http = HTTPServer(agent)  # type: ignore[arg-type]
        async with TestClient(TestServer(http.app)) as client:
            management = ""
            if acl:
                reply = await fake.rpc(ACL_BOOTSTRAP, ACLBootstrapRequest())
                assert reply.token is not None
                management = reply.token.secret_id
            await test(fake, client, management)

    asyncio.run(main())


async def _lines(resp: Any, n: int, timeout: float = 5.0) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            line = await resp.content.readline()
            if not line:
                break
            out.append(json.loads(line))
    return out


def test_frames_in_index_order_with_topic_key_filter() -> None:
    async def body(fake: FakeServer, client: TestClient, _: str) -> None:
        async with client.get("/v1/event/stream?topic=Job:web&topic=Evaluation") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("application/json")
            await wait_until(lambda: fake.fsm.events.active)
            await fake.register_job(api_job("web", count=1))
            await fake.register_job(api_job("api", count=1))
            frames = await _lines(resp, 2)
        events = [(e["Topic"], e["Key"]) for f in frames for e in f["Events"]]
        assert events[0] == ("Job", "web")
        assert [e[0] for e in events] == ["Job", "Evaluation", "Evaluation"]  # no Job "api"
        assert frames[0]["Index"] < frames[1]["Index"]
        assert all(e["Type"] == "JobRegistered" for f in frames for e in f["Events"])
        await _closed(fake)

    run(body)


async def _closed(fake: FakeServer) -> bool:
    await wait_until(lambda: not fake.fsm.events.active, what="subscription released")
    return True


def test_heartbeat_and_bad_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_endpoint, "HEARTBEAT_S", 0.05)

    async def body(fake: FakeServer, client: TestClient, _: str) -> None:
        async with client.get("/v1/event/stream") as resp:
            assert await _lines(resp, 1) == [{}]
        async with client.get("/v1/event/stream?topic=Job:a:b") as resp:
            assert resp.status == 400
        async with client.get("/v1/event/stream?index=x") as resp:
            assert resp.status == 400

    run(body)


def test_server_closing_a_subscription_ends_the_stream_with_an_error_line() -> None:
    async def body(fake: FakeServer, client: TestClient, _: str) -> None:
        async with client.get("/v1/event/stream") as resp:
            await wait_until(lambda: fake.fsm.events.active)
            fake.fsm.events.close_all()
            lines = await _lines(resp, 5)
        assert lines == [{"Error": "subscription closed by server, client should resubscribe"}]
        await _closed(fake)

    run(body)


def test_acl_each_topic_needs_its_capability_and_a_deleted_token_is_cut_off() -> None:
    async def body(fake: FakeServer, client: TestClient, management: str) -> None:
        async def token(rules: str) -> tuple[str, str]:
            h = {"X-Nomad-Token": management}
            name = f"p{len(rules)}"
            async with client.put(
                "/v1/acl/policy/" + name, json={"Name": name, "Rules": rules}, headers=h
            ) as r:
                assert r.status == 200, await r.text()
            async with client.put(
                "/v1/acl/token", json={"Type": "client", "Policies": [name]}, headers=h
            ) as r:
                t = await r.json()
            return t["SecretID"], t["AccessorID"]

        reader, accessor = await token('namespace "default" { policy = "read" }')

        async def status(query: str, secret: str) -> int:
            async with client.get("/v1/event/stream?" + query, headers={"X-Nomad-Token": secret}) as r:
                return r.status

        assert await status("topic=Job", "") == 403
        assert await status("topic=Job&namespace=prod", reader) == 403
        assert await status("topic=Node", reader) == 403  # no node policy
        assert await status("topic=ACLToken", reader) == 403  # management only
        assert await status("", reader) == 403  # everything: management only
        async with client.get("/v1/event/stream?topic=Job", headers={"X-Nomad-Token": reader}) as resp:
            assert resp.status == 200
            await wait_until(lambda: fake.fsm.events.active)
            async with client.delete(f"/v1/acl/token/{accessor}", headers={"X-Nomad-Token": management}) as r:
                assert r.status == 200
            lines = await _lines(resp, 5)
        assert len(lines) == 1 and "no longer allowed" in lines[0]["Error"]

    run(body, acl=True)


def test_a_client_only_agent_streams_from_its_server() -> None:
    async def body(fake: FakeServer, client: TestClient, _: str) -> None:
        server_addr = f"127.0.0.1:{client.server.port}"
        servers = SimpleNamespace(servers=lambda: [server_addr])
        agent = SimpleNamespace(
            server=None,
            client=SimpleNamespace(server_list=servers),
            acl=fake.ctx.acl,
            config=AgentConfig(),
            reload_hook=None,
            tls=None,
        )
        http = HTTPServer(agent)  # type: ignore[arg-type]
        async with (
            TestClient(TestServer(http.app)) as via_client,
            via_client.get("/v1/event/stream?topic=Job") as resp,
        ):
            assert resp.status == 200
            await wait_until(lambda: fake.fsm.events.active)
            await fake.register_job(api_job("web", count=1))
            [frame] = await _lines(resp, 1)
        assert [e["Key"] for e in frame["Events"]] == ["web"]

    run(body)

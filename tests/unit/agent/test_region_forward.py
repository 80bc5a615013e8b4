"""Which HTTP requests the agent forwards to another region (agent/http/region_forward.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from nomadd.agent.http.region_forward import REGION_FORWARDED_HEADER, forward_region, other_region
from nomadd.structs.errors import NoRegionPathError


def agent(region: str = "east", server: bool = True) -> Any:
    regions = SimpleNamespace(candidates=lambda r: ["10.0.0.1:4646"])
    srv = SimpleNamespace(config=SimpleNamespace(region=region), regions=regions) if server else None
    return SimpleNamespace(server=srv, tls=None)


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [
        ("/v1/jobs?region=west", "west"),
        ("/v1/client/fs/logs/abc?region=west&follow=true", "west"),
        ("/v1/jobs?region=east", ""),  # our own region
        ("/v1/jobs", ""),
        ("/v1/agent/members?region=west", ""),  # agent endpoints answer for this agent
        ("/v1/regions?region=west", ""),
        ("/v1/internal/Job.Register?region=west", ""),
    ],
)
def test_other_region(path: str, forwarded: str) -> None:
    assert other_region(agent(), make_mocked_request("GET", path)) == forwarded


def test_client_only_agent_leaves_it_to_its_servers() -> None:
    assert other_region(agent(server=False), make_mocked_request("GET", "/v1/jobs?region=west")) == ""


def test_a_forwarded_request_is_never_forwarded_again() -> None:
    req = make_mocked_request("GET", "/v1/jobs?region=west", headers={REGION_FORWARDED_HEADER: "1"})
    with pytest.raises(NoRegionPathError):
        asyncio.run(forward_region(agent(), req, "west"))

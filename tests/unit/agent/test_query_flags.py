"""?resources=true on allocation lists, ?all=true on a job's allocations, ?related=true on an
evaluation, and boolean query parameters parsed as Nomad parses them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from nomadd.agent.http.params import query_flag
from nomadd.server.state import store_evals
from nomadd.structs.errors import ValidationError
from nomadd.structs.eval import EvalStatus
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.eval import EvalUpdateEntry
from tests.unit.agent.test_acl_routes import Harness, run
from tests.unit.server.fakes import api_job, wait_until


def test_query_flag_is_go_parse_bool() -> None:
    assert [query_flag({"x": v}, "x") for v in ("", "1", "t", "TRUE", "True", "0", "f", "false")] == [
        True, True, True, True, True, False, False, False,
    ]  # fmt: skip
    assert query_flag({}, "x") is False
    with pytest.raises(ValidationError, match="Failed to parse value of 'x'"):
        query_flag({"x": "yes please"}, "x")


def test_resources_all_and_related() -> None:
    async def body(h: Harness) -> None:
        await h.fake.add_node()
        h.fake.scheduling.set_enabled(True)
        try:
            reply = await h.fake.register_job(api_job("web", count=1))
            await wait_until(
                lambda: h.fake.store.snapshot().get("evals", reply.eval_id).status == EvalStatus.COMPLETE
            )
        finally:
            h.fake.scheduling.set_enabled(False)

        async def get(path: str) -> object:
            status, text = await h.request("GET", path, h.management)
            assert status == 200, text
            return json.loads(text)

        plain = await get("/v1/allocations")
        with_res = await get("/v1/allocations?resources=true")
        assert plain[0]["AllocatedResources"] is None  # type: ignore[index]
        assert with_res[0]["AllocatedResources"]["Tasks"]  # type: ignore[index]
        # a purged and re-registered job: its old allocation shows only with ?all=true
        await h.fake.deregister_job("web", purge=True)
        await h.fake.register_job(api_job("web", count=0))
        assert await get("/v1/job/web/allocations") == []
        assert len(await get("/v1/job/web/allocations?all=true")) == 1  # type: ignore[arg-type]
        # an evaluation linked to another (its follow-up) lists it with ?related=true
        snap = h.fake.store.snapshot()
        first, second = sorted(store_evals.list_evals(snap), key=lambda e: e.create_index)[:2]
        linked = dataclasses.replace(first, next_eval=second.id)
        await h.fake.ctx.propose(MessageType.EVAL_UPDATE, EvalUpdateEntry(evals=(linked,)))
        ev = await get(f"/v1/evaluation/{first.id}?related=true")
        assert [e["ID"] for e in ev["RelatedEvals"]] == [second.id]  # type: ignore[index]
        assert set(ev["RelatedEvals"][0]) >= {"ID", "JobID", "Status", "WaitUntil"}  # type: ignore[index]
        assert (await get(f"/v1/evaluation/{first.id}"))["RelatedEvals"] is None  # type: ignore[index]
        status, text = await h.request("GET", f"/v1/evaluation/{first.id}?related=maybe", h.management)
        assert status == 400 and "related" in text

    run(body)


def test_pretty_indents_by_four_and_ends_with_a_newline() -> None:
    async def body(h: Harness) -> None:
        await h.fake.register_job(api_job("web", count=0))
        status, compact = await h.request("GET", "/v1/job/web/summary", h.management)
        assert status == 200 and "\n" not in compact and ": " not in compact
        status, pretty = await h.request("GET", "/v1/job/web/summary?pretty=true", h.management)
        assert status == 200
        assert pretty == json.dumps(json.loads(compact), indent=4) + "\n"
        status, off = await h.request("GET", "/v1/job/web/summary?pretty=false", h.management)
        assert off == compact

    run(body)

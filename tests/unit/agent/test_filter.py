"""?filter= (go-bexpr) and ?per_page/next_token/reverse on list routes."""

from __future__ import annotations

import json
import time

import pytest

from nomadd.agent.http.filter import apply_filter, parse_filter
from nomadd.agent.http.paginate import LISTS, page
from nomadd.structs.errors import ValidationError
from tests.unit.agent.test_acl_routes import Harness, run
from tests.unit.server.fakes import api_job

ITEMS = [
    {"ID": "a", "Status": "running", "Meta": {"team": "x", "a.b": "1"}, "Tags": ["web", "db"], "Count": 3,
     "Stop": False, "Name": "web-a"},
    {"ID": "b", "Status": "dead", "Meta": None, "Tags": [], "Count": 10, "Stop": True, "Name": "api"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "ids"),
    [
        ('Status == "running"', ["a"]),
        ("Status != running", ["b"]),
        ("Meta.team == x", ["a"]),
        ('Meta["a.b"] == "1"', ["a"]),
        ('"web" in Tags', ["a"]),
        ("web not in Tags", ["b"]),
        ("Tags contains db", ["a"]),
        ("Tags not contains db", ["b"]),
        ("Tags is empty", ["b"]),
        ("Meta is not empty", ["a"]),
        ("Count == 3", ["a"]),
        ("Count == 10.0", ["b"]),
        ("Stop == true", ["b"]),
        ("not Stop == true", ["a"]),
        ('Name matches "^web"', ["a"]),
        ("Name not matches `^web`", ["b"]),
        ("(Status == dead or Count == 3) and not Name == api", ["a"]),
        ("Status == dead or Count == 3 and Name == api", ["b"]),  # and binds tighter
        ("Tags.0 == web", ["a"]),
        ("Missing == 1", []),
        ("Missing != 1", ["a", "b"]),
    ],
)
def test_expressions(expr: str, ids: list[str]) -> None:
    assert [i["ID"] for i in apply_filter(expr, ITEMS)] == ids


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty expression"),
        ("Status ==", "expected a value at the end"),
        ("Status = 1", "unexpected character '='"),
        ('"x"', "expected 'in'"),
        ("(Status == x", "expected ')'"),
        ('Name matches "("', "invalid regular expression"),
        ('Status == "open', "unexpected character '\"'"),
        ("Status == x y", "unexpected at position 12"),
        ("a.. == 1", "expected a field name"),
        ("x" * 5000 + " == 1", "longer than 4096 bytes"),
        ("not " * 100 + "a == 1", "nested deeper than 64"),
    ],
)
def test_bad_expressions_are_400s_naming_the_problem(expr: str, message: str) -> None:
    with pytest.raises(ValidationError, match="failed to read filter expression") as err:
        parse_filter(expr)
    assert message in str(err.value)


def test_a_catastrophic_regex_is_refused_within_its_budget() -> None:
    t0 = time.monotonic()
    with pytest.raises(ValidationError, match="took too long"):
        apply_filter('Name matches "(a|aa)+$"', [{"Name": "a" * 30 + "!"}] * 1000)
    assert time.monotonic() - t0 < 2.0


def test_pages_in_token_order_with_filter_and_reverse() -> None:
    order = LISTS[("GET", "/v1/allocations")]
    items = [{"ID": f"id{i}", "CreateIndex": 10 - i, "Even": i % 2 == 0} for i in range(7)]
    first, token = page(order, {"per_page": "3"}, items)
    assert [i["CreateIndex"] for i in first] == [4, 5, 6] and token == "7.id3"
    second, token = page(order, {"per_page": "3", "next_token": token}, items)
    assert [i["CreateIndex"] for i in second] == [7, 8, 9] and token == "10.id0"
    last, token = page(order, {"per_page": "3", "next_token": token}, items)
    assert [i["CreateIndex"] for i in last] == [10] and token == ""
    evens, token = page(order, {"per_page": "2", "filter": "Even == true"}, items)
    assert [i["CreateIndex"] for i in evens] == [4, 6] and token == "8.id2"  # filtered before counting
    backwards, token = page(order, {"per_page": "2", "reverse": "true"}, items)
    assert [i["CreateIndex"] for i in backwards] == [10, 9] and token == "8.id2"
    rest, _ = page(order, {"reverse": "true", "next_token": token}, items)
    assert [i["CreateIndex"] for i in rest] == [8, 7, 6, 5, 4]
    for bad in ({"per_page": "-1"}, {"per_page": "x"}, {"next_token": "nope"}, {"next_token": "x.y"}):
        with pytest.raises(ValidationError):
            page(order, bad, items)


def test_the_http_api_pages_and_filters_lists() -> None:
    async def body(h: Harness) -> None:
        for name in ("j1", "j2", "j3", "web"):
            await h.fake.register_job(api_job(name, Meta={"tier": "front" if name == "web" else "back"}))
        status, text = await h.request("GET", "/v1/jobs?per_page=2", h.management)
        assert status == 200, text
        assert [j["ID"] for j in json.loads(text)] == ["j1", "j2"]
        async with h.client.get("/v1/jobs?per_page=2", headers={"X-Nomad-Token": h.management}) as resp:
            token = resp.headers["X-Nomad-NextToken"]
        assert token == "default.j3"
        status, text = await h.request("GET", f"/v1/jobs?per_page=2&next_token={token}", h.management)
        assert [j["ID"] for j in json.loads(text)] == ["j3", "web"]
        status, text = await h.request(
            "GET", "/v1/jobs?filter=ID%20matches%20%22%5Ej%5B12%5D%22", h.management
        )
        assert [j["ID"] for j in json.loads(text)] == ["j1", "j2"]
        status, text = await h.request("GET", "/v1/jobs?filter=ID%20%3D%3D", h.management)
        assert status == 400 and "failed to read filter expression" in text

    run(body)

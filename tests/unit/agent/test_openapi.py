"""Issue 10 acceptance 4: docs/api/openapi.yaml is a valid OpenAPI 3 document and lists exactly the
agent's routes (every aiohttp route is in the document and every documented operation is a route)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import yaml
from openapi_spec_validator import validate

from nomadd.agent.http.server import HTTPServer

DOC = Path(__file__).resolve().parents[3] / "docs" / "api" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def load() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(DOC.read_text()))


def route_table() -> set[tuple[str, str]]:
    """(METHOD, path) of every route the agent serves, ``{name:regex}`` written ``{name}``."""
    server = HTTPServer(cast(Any, None))  # the router only keeps the agent for its handlers
    routes = set()
    for route in server.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        routes.add((route.method, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)))
    return routes


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops if m in METHODS}


def test_the_document_is_valid_openapi() -> None:
    validate(load())


def test_the_document_matches_the_route_table() -> None:
    routes, doc = route_table(), documented(load())
    assert routes, "no routes found"
    assert sorted(routes - doc) == [], "routes missing from docs/api/openapi.yaml"
    assert sorted(doc - routes) == [], "documented operations the agent does not serve"


def test_every_operation_documents_its_errors() -> None:
    doc = load()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            if op.get("x-nomadd-enterprise-only"):  # 501 for any request, as Nomad's open source
                assert set(op["responses"]) == {"501"}, (method, path)
            elif not op.get("x-nomadd-no-errors"):
                assert {"200", "400", "500"} <= set(op["responses"]), (method, path)

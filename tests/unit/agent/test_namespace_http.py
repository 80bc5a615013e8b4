"""The HTTP edge of namespaces, node pools, search and job parse/validate with ACLs on: routes
(``/v1/node/pools`` is not a node ID), bodies, status codes and the parse capability."""

from __future__ import annotations

import json

from tests.api_shapes import decode
from tests.unit.agent.test_acl_routes import Harness, run

HCL = 'job "web" {\n  datacenters = ["dc1"]\n  group "g" {\n    task "t" {\n      driver = "raw_exec"\n    }\n  }\n}\n'


def test_parse_needs_parse_job_or_submit_job() -> None:
    async def body(h: Harness) -> None:
        reader = await h.token_for('namespace "default" { capabilities = ["read-job"] }')
        parser = await h.token_for('namespace "default" { capabilities = ["parse-job"] }')
        submitter = await h.token_for('namespace "default" { capabilities = ["submit-job"] }')
        req = {"JobHCL": HCL, "Canonicalize": True}
        assert (await h.request("PUT", "/v1/jobs/parse", reader, req))[0] == 403
        for token in (parser, submitter):
            status, text = await h.request("PUT", "/v1/jobs/parse", token, req)
            assert status == 200, text
            job = json.loads(text)
            assert job["ID"] == "web" and job["TaskGroups"][0]["Count"] == 1  # canonicalized
        status, text = await h.request("PUT", "/v1/jobs/parse", parser, {"JobHCL": "job {"})
        assert status == 400 and text.startswith("Failed to parse job:")
        status, text = await h.request("PUT", "/v1/jobs/parse", parser, {"JobHCL": HCL, "Variables": 3})
        assert status == 400 and "Variables" in text

    run(body)


def test_validate_answers_a_list() -> None:
    async def body(h: Harness) -> None:
        status, text = await h.request("PUT", "/v1/jobs/parse", h.management, {"JobHCL": HCL})
        job = json.loads(text)
        status, text = await h.request("PUT", "/v1/validate/job", h.management, {"Job": job})
        assert status == 200, text
        assert json.loads(text) == {
            "DriverConfigValidated": False,
            "ValidationErrors": None,
            "Error": "",
            "Warnings": "",
        }
        bad = {**job, "Namespace": "elsewhere"}
        status, text = await h.request("PUT", "/v1/validate/job", h.management, {"Job": bad})
        assert json.loads(text)["ValidationErrors"] == ['job "web" is in nonexistent namespace "elsewhere"']
        assert (await h.request("PUT", "/v1/validate/job", h.management, {}))[0] == 400
        unsupported = {**job, "Multiregion": {"Regions": [{"Name": "r"}]}}
        status, text = await h.request("PUT", "/v1/validate/job", h.management, {"Job": unsupported})
        assert status == 400 and "Job.Multiregion" in text, text
        periodic = {**job, "Periodic": {"Enabled": True, "Spec": "* * * * *"}}  # a service job
        status, text = await h.request("PUT", "/v1/validate/job", h.management, {"Job": periodic})
        assert status == 200 and "Periodic can only be used with" in json.loads(text)["Error"], text

    run(body)


def test_namespace_and_pool_routes() -> None:
    async def body(h: Harness) -> None:
        m = h.management
        status, text = await h.request("PUT", "/v1/namespace", m, {"Name": "apps", "Description": "d"})
        assert status == 200, text
        status, text = await h.request("POST", "/v1/namespace/apps", m, {"Name": "other"})
        assert status == 400 and text == "Namespace name does not match request path"
        status, text = await h.request("POST", "/v1/namespace/bad%20name", m, {})
        assert status == 400 and 'invalid name "bad name"' in text
        status, text = await h.request("PUT", "/v1/node/pool/p", m, {"Meta": {"k": 1}})
        assert status == 400 and text == "NodePool.Meta.k: expected string", text
        status, text = await h.request("GET", "/v1/namespaces", m)
        assert [ns["Name"] for ns in json.loads(text)] == ["apps", "default"]
        ns = json.loads((await h.request("GET", "/v1/namespace/apps", m))[1])
        assert ns["Description"] == "d" and ns["CreateIndex"] > 0 and "Capabilities" in ns
        assert (await h.request("GET", "/v1/namespace/none", m))[0] == 404
        assert (await h.request("DELETE", "/v1/namespace/apps", m))[0] == 200
        # /v1/node/pools is the pool list, not a node called "pools"
        status, text = await h.request("GET", "/v1/node/pools", m)
        assert status == 200 and [p["Name"] for p in json.loads(text)] == ["all", "default"]
        status, text = await h.request(
            "PUT", "/v1/node/pools", m, {"Name": "gpu", "Meta": {"k": "v"}, "NodeIdentityTTL": "1h"}
        )
        assert status == 200, text
        pool = json.loads((await h.request("GET", "/v1/node/pool/gpu", m))[1])
        assert pool["Meta"] == {"k": "v"} and pool["NodeIdentityTTL"] == 3600 * 10**9
        status, text = await h.request("PUT", "/v1/node/pool/x", m, {"NodeIdentityTTL": "soon"})
        assert status == 400 and text == "NodePool.NodeIdentityTTL: invalid duration 'soon'"
        assert (await h.request("GET", "/v1/node/pool/gpu/nodes", m))[1] == "[]"
        status, text = await h.request("PUT", "/v1/node/pool/all", m, {"Name": "all"})
        assert status == 400 and text == 'modifying node pool "all" is not allowed'
        status, text = await h.request("PUT", "/v1/search", m, {"Prefix": "gp", "Context": "node_pools"})
        assert json.loads(text) == {"Matches": {"node_pools": ["gpu"]}, "Truncations": {"node_pools": False}}
        status, text = await h.request("PUT", "/v1/search", m, {"Prefix": 5})
        assert status == 400 and text == "Prefix: expected a string"

    run(body)


def test_namespaces_and_pools_decode_as_nomads_go_structs() -> None:
    async def body(h: Harness) -> None:
        m = h.management
        caps = {"EnabledTaskDrivers": ["exec"]}
        await h.request("PUT", "/v1/namespace/apps", m, {"Meta": {"a": "b"}, "Capabilities": caps})
        await h.request("PUT", "/v1/node/pool/gpu", m, {"Description": "d"})
        for path, struct in (
            ("/v1/namespaces", "Namespace"),
            ("/v1/node/pools", "NodePool"),
        ):
            status, text = await h.request("GET", path, m)
            assert status == 200, text
            for item in json.loads(text):
                assert decode(item, struct) == [], (path, item)
        assert decode(json.loads((await h.request("GET", "/v1/namespace/apps", m))[1]), "Namespace") == []
        assert decode(json.loads((await h.request("GET", "/v1/node/pool/all", m))[1]), "NodePool") == []

    run(body)

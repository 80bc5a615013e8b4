"""Issue 10 acceptance 3: property-based fuzzing of the HTTP API and the internal RPC against a real
-dev agent. Any 5xx, any answer slower than 5 s or a dead agent fails the run.

* ``test_corpus_replays``: every request in tests/fuzz/corpus/ (past failures) is replayed first.
* ``test_fuzz``: for ``NOMADD_FUZZ_SECONDS`` (default 60) rounds of Hypothesis examples, each round
  seeded from ``NOMADD_FUZZ_SEED`` (default fixed, printed): generic requests built from
  docs/api/openapi.yaml (every operation, hostile path/query values, random JSON bodies), targeted
  job and variable bodies (valid jobs with fields replaced by hostile values) and internal RPCs
  (every typed method, random wire maps, mostly signed as a server so the body is decoded). A failing request is written to the corpus directory
  as ``failure-<hash>.json`` (commit it once fixed) and the run fails.

Operations that legitimately take the single dev agent apart (removing its Raft peer or its
leadership, restoring a snapshot, replacing its client's server list, leaving or joining gossip,
reloading) and unbounded streams (log
``follow``) are not fuzzed; blocking queries always carry ``wait`` <= 200 ms.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped,unused-ignore]
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from nomadd.structs.requests import Method
from tests.helpers import DevAgent

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
SEED = int(os.environ.get("NOMADD_FUZZ_SEED", "20261203"))
BUDGET_S = float(os.environ.get("NOMADD_FUZZ_SECONDS", "60"))
HANG_S = 5.0
EXAMPLES_PER_ROUND = 25

SKIP = {
    ("DELETE", "/v1/operator/raft/peer"),
    ("PUT", "/v1/agent/servers"),
    ("POST", "/v1/agent/servers"),
    ("PUT", "/v1/agent/join"),
    ("POST", "/v1/agent/join"),
    ("PUT", "/v1/agent/force-leave"),
    ("POST", "/v1/agent/force-leave"),
    ("PUT", "/v1/agent/reload"),
    ("POST", "/v1/agent/reload"),
    ("PUT", "/v1/operator/raft/transfer-leadership"),
    ("POST", "/v1/operator/raft/transfer-leadership"),
    ("PUT", "/v1/operator/snapshot"),  # a restore replaces the state
    # a stream that never ends by design (the whole-answer timeout cannot apply); its query
    # parameters' errors are tested in tests/unit/agent/test_event_endpoint.py
    ("GET", "/v1/event/stream"),
    ("POST", "/v1/internal/{method}"),  # fuzzed by the RPC strategy
}
RPC_MODULES = ("alloc", "eval", "job", "node", "operator", "plan", "status", "system", "variables")
RPC_SKIP = {"Operator.RaftRemovePeerByAddress", "Operator.RaftRemovePeerByID"}


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/json"
    sign: bool = False  # an internal RPC signed as a server of the cluster (at send time)
    enterprise_only: bool = False  # a Nomad Enterprise path: 501 is its answer, not a fault

    def to_corpus(self) -> dict[str, Any]:
        try:
            text: Any = {"body_text": self.body.decode()}
        except UnicodeDecodeError:
            text = {"body_hex": self.body.hex()}
        doc = {"method": self.method, "path": self.path, "content_type": self.content_type, **text}
        return {**doc, "sign": self.sign, "enterprise_only": self.enterprise_only}

    @classmethod
    def from_corpus(cls, doc: dict[str, Any]) -> Request:
        if "body_msgpack" in doc:
            body = msgpack.packb(doc["body_msgpack"])
        elif "body_json" in doc:
            body = json.dumps(doc["body_json"]).encode()
        elif "body_hex" in doc:
            body = bytes.fromhex(doc["body_hex"])
        else:
            body = doc.get("body_text", "").encode()
        return cls(
            doc["method"],
            doc["path"],
            body,
            doc.get("content_type", "application/json"),
            bool(doc.get("sign")),
            bool(doc.get("enterprise_only")),
        )


def check(dev: DevAgent, req: Request) -> None:
    """The property: a 2xx-4xx answer within HANG_S and a live agent; else a corpus entry."""
    problem = ""
    headers = {"Content-Type": req.content_type}
    if req.sign:
        headers.update(dev.server_auth(req.path.rsplit("/", 1)[1], req.body))
    try:
        status, text, took = dev.request(req.method, req.path, req.body or None, headers, timeout=HANG_S)
        if status >= 500 and not (status == 501 and req.enterprise_only):
            problem = f"{status}: {text[:300]}"
        elif took > HANG_S:
            problem = f"answered after {took:.1f}s"
    except TimeoutError:
        problem = f"no answer within {HANG_S}s"
    except OSError as err:
        problem = f"connection failed: {err!r}"
    if not problem and dev.agent.proc.poll() is not None:
        problem = "the agent exited"
    if problem:
        doc = req.to_corpus()
        name = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
        (CORPUS / f"failure-{name}.json").write_text(json.dumps({**doc, "problem": problem}, indent=1))
        raise AssertionError(f"{req.method} {req.path[:200]}: {problem} (saved as failure-{name}.json)")


# ---- strategies --------------------------------------------------------------------------------

HOSTILE_INTS = st.sampled_from([2**63, 2**64, -(2**63) - 1, 2**70, 10**18, -5, -1, 0, 2**63 - 1, 10**9])
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "../..", "%", "{}", "x" * 300, "é" * 70, "-1", "1e300", "NaN"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    HOSTILE_INTS,
    st.floats(allow_nan=False, allow_infinity=False),
    HOSTILE_TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(HOSTILE_TEXT, inner, max_size=4)),
    max_leaves=12,
)
# msgpack carries 64-bit integers only: the wire fuzz stays inside that range
WIRE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=20),
)
WIRE = st.recursive(
    WIRE_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
PATH_VALUE = st.one_of(st.sampled_from(["fuzz", "x", "00000000-0000-0000-0000-000000000000"]), HOSTILE_TEXT)


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    doc = yaml.safe_load((ROOT / "docs" / "api" / "openapi.yaml").read_text())
    ops = []
    for path, items in doc["paths"].items():
        for method, op in items.items():
            if (method.upper(), path) not in SKIP:
                ops.append((method.upper(), path, op))
    return ops


OPERATIONS = _operations()


def _quote(value: object) -> str:
    return urllib.parse.quote(str(value), safe="")


@st.composite
def generic_requests(draw: st.DrawFn) -> Request:
    method, template, op = draw(st.sampled_from(OPERATIONS))
    path = template
    query: list[tuple[str, str]] = []
    for param in op.get("parameters", []):
        if "$ref" in param:
            param = {"name": param["$ref"].rsplit("/", 1)[1], "in": "query"}
        name = param["name"]
        if param["in"] == "path":
            path = path.replace("{" + name + "}", _quote(draw(PATH_VALUE)) or "x")
        elif name not in ("index", "wait", "follow") and draw(st.booleans()):
            query.append((name, str(draw(st.one_of(HOSTILE_TEXT, HOSTILE_INTS)))))
    if draw(st.booleans()):  # a blocking query, bounded
        query += [("index", str(draw(st.one_of(HOSTILE_INTS, st.integers(0, 10**6))))), ("wait", "200ms")]
    if query:
        path += "?" + urllib.parse.urlencode(query)
    body = b""
    if method in ("PUT", "POST"):
        body = draw(
            st.one_of(st.just(b""), st.binary(max_size=30), JSON.map(lambda v: json.dumps(v).encode()))
        )
    return Request(method, path, body, enterprise_only=bool(op.get("x-nomadd-enterprise-only")))


def _base_job(job_id: str) -> dict[str, Any]:
    return {
        "ID": job_id,
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 1,
                "Tasks": [
                    {"Name": "t", "Driver": "mock", "Config": {"run_for": "1s"}, "Resources": {"CPU": 10}}
                ],
            }
        ],
    }


JOB_FIELDS = [
    ("ID",),
    ("Name",),
    ("Type",),
    ("Priority",),
    ("Datacenters",),
    ("Meta",),
    ("Constraints",),
    ("TaskGroups",),
    ("TaskGroups", 0, "Count"),
    ("TaskGroups", 0, "Name"),
    ("TaskGroups", 0, "RestartPolicy"),
    ("TaskGroups", 0, "ReschedulePolicy"),
    ("TaskGroups", 0, "EphemeralDisk"),
    ("TaskGroups", 0, "Update"),
    ("TaskGroups", 0, "Tasks"),
    ("TaskGroups", 0, "Tasks", 0, "Driver"),
    ("TaskGroups", 0, "Tasks", 0, "Config"),
    ("TaskGroups", 0, "Tasks", 0, "Env"),
    ("TaskGroups", 0, "Tasks", 0, "KillTimeout"),
    ("TaskGroups", 0, "Tasks", 0, "Resources"),
    ("TaskGroups", 0, "Tasks", 0, "Resources", "CPU"),
    ("TaskGroups", 0, "Tasks", 0, "Resources", "MemoryMB"),
    ("TaskGroups", 0, "Tasks", 0, "LogConfig"),
]


@st.composite
def job_requests(draw: st.DrawFn) -> Request:
    job = _base_job(draw(st.sampled_from(["fuzz-a", "fuzz-b"])))
    for where in draw(st.lists(st.sampled_from(JOB_FIELDS), min_size=1, max_size=3)):
        target: Any = job
        for key in where[:-1]:  # an earlier replacement may have removed the way down
            ok = (isinstance(target, dict) and key in target) or (
                isinstance(target, list) and isinstance(key, int) and key < len(target)
            )
            target = target[key] if ok else None
        if isinstance(target, dict):
            target[where[-1]] = draw(st.one_of(HOSTILE_INTS, JSON))
    path = draw(st.sampled_from(["/v1/jobs", f"/v1/job/{_quote(job.get('ID', 'x'))}"]))
    return Request("PUT", path, json.dumps({"Job": job}).encode())


@st.composite
def var_requests(draw: st.DrawFn) -> Request:
    path = _quote(draw(PATH_VALUE)) or "v"
    body = {"Items": draw(st.one_of(st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=4), JSON))}
    if draw(st.booleans()):
        body["Namespace"] = draw(JSON)
    cas = f"?cas={draw(st.one_of(HOSTILE_INTS, HOSTILE_TEXT))}" if draw(st.booleans()) else ""
    method = draw(st.sampled_from(["PUT", "DELETE", "GET"]))
    return Request(method, f"/v1/var/{path}{urllib.parse.quote(cas, safe='?=')}", json.dumps(body).encode())


def _rpc_methods() -> list[Method[Any, Any]]:
    found = []
    for name in RPC_MODULES:
        module = importlib.import_module(f"nomadd.structs.requests.{name}")
        found += [m for m in vars(module).values() if isinstance(m, Method) and m.name not in RPC_SKIP]
    return found


RPC_METHODS = _rpc_methods()


@st.composite
def rpc_requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(RPC_METHODS))
    name, fields = method.name, [f.name for f in dataclasses.fields(method.request)]
    args = {f: draw(WIRE) for f in draw(st.lists(st.sampled_from(fields), max_size=4, unique=True))}
    args.update(min_query_index=0, max_query_time_s=0.2)  # never a long blocking query
    body = draw(st.one_of(st.just(msgpack.packb(args, use_bin_type=True)), st.binary(max_size=20)))
    sign = draw(st.integers(0, 9)) > 0  # mostly signed as a server, so decoding is reached
    return Request("POST", f"/v1/internal/{name}", body, "application/msgpack", sign)


REQUESTS = st.one_of(generic_requests(), job_requests(), var_requests(), rpc_requests())


# ---- tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevAgent]:
    with DevAgent.running(Path(tmp_path_factory.mktemp("fuzz"))) as d:
        yield d


def test_corpus_replays(dev: DevAgent) -> None:
    files = sorted(CORPUS.glob("*.json"))
    assert files, "the corpus is empty"
    for path in files:
        check(dev, Request.from_corpus(json.loads(path.read_text())))


def test_fuzz(dev: DevAgent) -> None:
    print(f"\nfuzz seed={SEED} budget={BUDGET_S:.0f}s (NOMADD_FUZZ_SEED / NOMADD_FUZZ_SECONDS)")
    sent = 0

    @settings(
        max_examples=EXAMPLES_PER_ROUND,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(REQUESTS)
    def one(req: Request) -> None:
        nonlocal sent
        sent += 1
        check(dev, req)

    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < BUDGET_S:
        seed(SEED + rounds)(one)()
        rounds += 1
    print(f"fuzz sent={sent} rounds={rounds} seconds={time.monotonic() - start:.0f} seed={SEED}")

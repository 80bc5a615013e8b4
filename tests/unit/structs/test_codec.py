from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import field
from enum import IntEnum, StrEnum

import msgpack  # type: ignore[import-untyped]
import pytest

from nomadd.structs import codec, codec_diff
from nomadd.structs.alloc import Allocation, AllocMetric, TaskState, TaskStatus
from nomadd.structs.codec import api, api_name, from_api, from_wire, pack, to_api, to_wire, unpack
from nomadd.structs.errors import ValidationError
from nomadd.structs.job import Job, Task, TaskGroup
from nomadd.structs.resources import (
    AllocatedCpuResources,
    AllocatedResources,
    AllocatedTaskResources,
    Resources,
)


class Color(StrEnum):
    RED = "red"
    BLUE = "blue"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Leaf:
    node_id: str = ""
    cpu: int = field(default=0, metadata=api("CPU"))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    name: str = ""
    count: int = 1
    ratio: float = 0.0
    on: bool = False
    blob: bytes = b""
    color: Color = Color.RED
    level: Level = Level.LOW
    leaf: Leaf = field(default_factory=Leaf)
    maybe: Leaf | None = None
    leaves: tuple[Leaf, ...] = ()
    tags: tuple[str, ...] = ()
    by_name: Mapping[str, Leaf] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    opt_levels: tuple[Level, ...] | None = None
    anything: object = None


def full_sample() -> Sample:
    return Sample(
        name="x",
        count=7,
        ratio=0.5,
        on=True,
        blob=b"\x00\x01",
        color=Color.BLUE,
        level=Level.HIGH,
        leaf=Leaf(node_id="n1", cpu=5),
        maybe=Leaf(node_id="n2"),
        leaves=(Leaf(cpu=1), Leaf(cpu=2)),
        tags=("a", "b"),
        by_name={"k": Leaf(node_id="n3")},
        labels={"a": "b"},
        opt_levels=(Level.LOW, Level.HIGH),
        anything={"nested": [1, "two", {"three": 3}]},
    )


def test_api_name_derivation() -> None:
    assert api_name("node_id") == "NodeID"
    assert api_name("memory_mb") == "MemoryMB"
    assert api_name("http_addr") == "HTTPAddr"
    assert api_name("failed_tg_allocs") == "FailedTGAllocs"
    assert api_name("status_description") == "StatusDescription"
    assert api_name("preempted_alloc_ids") == "PreemptedAllocIDs"


def test_wire_round_trip_keeps_every_kind() -> None:
    s = full_sample()
    assert from_wire(Sample, to_wire(s)) == s
    assert unpack(Sample, pack(s)) == s


def test_wire_uses_snake_case_and_plain_values() -> None:
    wire = to_wire(full_sample())
    assert wire["leaf"] == {"node_id": "n1", "cpu": 5}
    assert wire["level"] == 2
    assert type(wire["level"]) is int
    assert wire["leaves"] == [{"node_id": "", "cpu": 1}, {"node_id": "", "cpu": 2}]
    assert wire["opt_levels"] == [1, 2]
    assert wire["maybe"] == {"node_id": "n2", "cpu": 0}


def test_from_wire_tuples_and_enums_are_typed() -> None:
    s = unpack(Sample, pack(full_sample()))
    assert isinstance(s.tags, tuple)
    assert isinstance(s.leaves, tuple)
    assert s.color is Color.BLUE
    assert s.opt_levels == (Level.LOW, Level.HIGH)
    assert isinstance(s.by_name["k"], Leaf)


def test_from_wire_copies_maps_and_never_holds_the_callers() -> None:
    wire = to_wire(AllocMetric(scores={"n1.binpack": 0.5}, nodes_available={"dc1": 3}))
    m = from_wire(AllocMetric, wire)
    assert m.scores == {"n1.binpack": 0.5} and m.scores is not wire["scores"]
    assert m.nodes_available == {"dc1": 3} and m.nodes_available is not wire["nodes_available"]
    over = codec_diff.from_wire_over(AllocMetric, {"scores": wire["scores"]}, m)
    assert over.scores == m.scores and over.scores is not wire["scores"]


def test_from_wire_ignores_unknown_and_defaults_missing() -> None:
    s = from_wire(Sample, {"name": "y", "from_the_future": 1})
    assert s == Sample(name="y")


def test_api_round_trip_through_json() -> None:
    s = full_sample()
    doc = to_api(s)
    assert doc.pop("Blob") == b"\x00\x01"  # bytes have no JSON form; the API has no bytes
    text = json.dumps(doc)
    back = from_api(Sample, json.loads(text))
    assert back == dataclasses.replace(s, blob=b"")


def test_api_names_and_overrides() -> None:
    doc = to_api(full_sample())
    assert doc["Leaf"] == {"NodeID": "n1", "CPU": 5}
    assert doc["ByName"] == {"k": {"NodeID": "n3", "CPU": 0}}
    assert doc["Tags"] == ["a", "b"]
    assert json.loads(json.dumps(doc["Color"])) == "blue"


def test_from_api_ignores_unknown_keys_and_null() -> None:
    s = from_api(Sample, {"Name": "z", "Unknown": {"deep": 1}, "Count": None, "Maybe": None})
    assert s == Sample(name="z", count=1, maybe=None)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"Count": "3"}, "Count: expected integer"),
        ({"Count": True}, "Count: expected integer"),
        ({"Count": 1.5}, "Count: expected integer"),
        ({"Ratio": "x"}, "Ratio: expected number"),
        ({"On": 1}, "On: expected boolean"),
        ({"Name": 3}, "Name: expected string"),
        ({"Color": "green"}, "Color: invalid value 'green' (expected one of red, blue)"),
        ({"Leaf": []}, "Leaf: expected object"),
        ({"Leaves": [{}, {"CPU": "x"}]}, "Leaves[1].CPU: expected integer"),
        ({"Leaves": {}}, "Leaves: expected array"),
        ({"ByName": {"web": {"NodeID": 5}}}, "ByName.web.NodeID: expected string"),
        ({"ByName": {"a b": {"NodeID": 5}}}, "ByName['a b'].NodeID: expected string"),
        ({"Labels": {"k": 1}}, "Labels.k: expected string"),
    ],
)
def test_from_api_names_the_bad_path(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        from_api(Sample, doc)
    assert str(exc.value) == message
    assert exc.value.code == 400


def test_from_api_whole_value_must_be_object() -> None:
    with pytest.raises(ValidationError, match=r"^expected object$"):
        from_api(Sample, [1])


def test_from_api_accepts_integral_floats() -> None:
    assert from_api(Sample, {"Count": 3.0}).count == 3


def test_from_api_prefix_path_for_jobs() -> None:
    doc = {"TaskGroups": [{"Tasks": [{}, {"Resources": {"MemoryMB": "lots"}}]}]}
    with pytest.raises(ValidationError) as exc:
        from_api(Job, doc, path="Job")
    assert str(exc.value) == "Job.TaskGroups[0].Tasks[1].Resources.MemoryMB: expected integer"


def test_job_api_shape_has_nomad_names() -> None:
    job = Job(
        id="web",
        datacenters=("dc1",),
        task_groups=(TaskGroup(name="g", tasks=(Task(name="t", driver="raw_exec", resources=Resources()),)),),
    )
    doc = to_api(job)
    task = doc["TaskGroups"][0]["Tasks"][0]  # type: ignore[index]
    assert task["Resources"] == {
        "CPU": 100,
        "Cores": 0,
        "MemoryMB": 300,
        "MemoryMaxMB": 0,
        "DiskMB": 0,
        "Networks": [],
        # Nomad's keys nomadd has no field for, at their zero value (Resources.NOMAD_ONLY)
        "Devices": None,
        "NUMA": None,
        "SecretsMB": None,
        "IOPS": None,
    }
    assert doc["ID"] == "web"
    assert doc["Periodic"] is None and doc["Dispatched"] is False  # Job.NOMAD_ONLY
    assert from_api(Job, json.loads(json.dumps(doc))) == job


def test_unsupported_field_type_is_reported() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Bad:
        x: list[int] = field(default_factory=list)

    with pytest.raises(TypeError, match="unsupported"):
        to_wire(Bad())


def _alloc(i: int) -> Allocation:
    return Allocation(
        id=f"alloc-{i}",
        job_id="web",
        task_group="g",
        name=f"web.g[{i}]",
        node_id="node",
        allocated_resources=AllocatedResources(
            tasks={"t": AllocatedTaskResources(cpu=AllocatedCpuResources(cpu_shares=100))}
        ),
        task_states={"t": TaskState(state=TaskStatus.RUNNING)},
    )


def test_codec_is_fast_enough_for_plan_commits() -> None:
    # The scheduler benchmark commits thousands of allocations per second through the codec.
    # Measured ~27k round trips per CPU-second; require 5k per CPU-second (process time, so a
    # busy CI machine does not make this flaky).
    allocs = [_alloc(i) for i in range(2000)]
    unpack(Allocation, pack(allocs[0]))  # compile the converters outside the timing
    start = time.process_time()
    for a in allocs:
        unpack(Allocation, pack(a))
    elapsed = max(time.process_time() - start, 1e-9)
    assert 2000 / elapsed > 5_000, f"{2000 / elapsed:.0f} round trips per CPU-second"


def test_converters_are_cached_per_class() -> None:
    to_wire(Leaf())
    first = codec._to_wire_cache[Leaf]
    to_wire(Leaf(cpu=1))
    assert codec._to_wire_cache[Leaf] is first


def test_from_api_strict_rejects_unknown_keys_with_path() -> None:
    doc = {"TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Cfg": {}}]}]}
    assert from_api(Job, doc).task_groups[0].tasks[0].name == "t"
    with pytest.raises(ValidationError) as exc:
        from_api(Job, doc, path="Job", strict=True)
    assert str(exc.value) == "Job.TaskGroups[0].Tasks[0].Cfg: unknown field"
    # keys inside maps and free-form driver config are data, not fields
    ok = {"Meta": {"anything": "x"}, "TaskGroups": [{"Tasks": [{"Config": {"weird": 1}}]}]}
    from_api(Job, ok, strict=True)


def test_from_api_empty_enum_string_means_unset() -> None:
    # Go encodes an unset string as "": a job from `nomad job inspect` may carry "Status": "".
    assert from_api(Sample, {"Color": ""}).color is Color.RED
    job = from_api(Job, {"ID": "x", "Status": "", "Type": ""})
    assert str(job.status) == "pending"
    assert str(job.type) == "service"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Required:
    key: str
    leaf: Leaf
    level: Level
    extra: int = 0


def test_required_fields_round_trip_and_missing_is_reported() -> None:
    obj = Required(key="k", leaf=Leaf(cpu=2), level=Level.HIGH)
    assert unpack(Required, pack(obj)) == obj
    assert from_api(Required, to_api(obj)) == obj
    with pytest.raises(ValidationError, match="missing required field"):
        from_api(Required, {"Key": "k"})
    with pytest.raises(KeyError):
        from_wire(Required, {"key": "k"})  # wire input is trusted: a broken entry is loud


def test_to_wire_diff_and_from_wire_over_rebuild_similar_structs() -> None:
    base = Allocation(
        id="a1",
        name="web.web[0]",
        node_id="n1",
        job_id="web",
        task_group="web",
        task_states={"t": TaskState(state=TaskStatus.RUNNING, restarts=1)},
    )
    other = dataclasses.replace(
        base, id="a2", name="web.web[1]", node_id="n2", task_states={"t": TaskState(state=TaskStatus.DEAD)}
    )
    same_but_id = dataclasses.replace(base, id="a3")
    base_wire = to_wire(base)
    diff = codec_diff.to_wire_diff(base, other)
    full = to_wire(other)
    assert diff == {k: full[k] for k in ("id", "name", "node_id", "task_states")}
    assert codec_diff.to_wire_diff(base, same_but_id) == {"id": "a3"}
    rebuilt = codec_diff.from_wire_over(Allocation, diff, from_wire(Allocation, base_wire))
    assert rebuilt == other
    assert (
        isinstance(rebuilt.task_states["t"], TaskState) and rebuilt.task_states["t"].state is TaskStatus.DEAD
    )
    shared = codec_diff.from_wire_over(Allocation, {"id": "a3"}, base)
    assert shared == same_but_id and shared.task_states is base.task_states


def test_struct_fields_are_diffed_field_by_field_and_none_on_either_side_is_sent_whole() -> None:
    metric = AllocMetric(nodes_evaluated=10, nodes_in_pool=1000, scores={"n1.normalized-score": 0.5})
    base = Allocation(id="a1", node_id="n1", metrics=metric)
    moved = dataclasses.replace(
        base,
        id="a2",
        metrics=dataclasses.replace(metric, scores={"n2.normalized-score": 0.25}, allocation_time=7),
    )
    diff = codec_diff.to_wire_diff(base, moved)
    assert diff == {"id": "a2", "metrics": {"scores": {"n2.normalized-score": 0.25}, "allocation_time": 7}}
    rebuilt = codec_diff.from_wire_over(Allocation, diff, base)
    assert rebuilt == moved and isinstance(rebuilt.metrics, AllocMetric)
    assert rebuilt.metrics.nodes_available is metric.nodes_available  # unchanged parts are shared

    bare = dataclasses.replace(base, metrics=None)
    for a, b in ((base, bare), (bare, base)):  # the struct appears or goes: sent whole (or None)
        d = codec_diff.to_wire_diff(a, b)
        assert d == {"metrics": to_wire(b)["metrics"]}
        assert codec_diff.from_wire_over(Allocation, d, a) == b
    # what goes through msgpack still rebuilds the same struct
    wire = msgpack.unpackb(msgpack.packb(diff, use_bin_type=True), raw=False)
    assert codec_diff.from_wire_over(Allocation, wire, from_wire(Allocation, to_wire(base))) == moved


def test_replacer_copies_with_fields_changed_and_leaves_the_original() -> None:
    alloc = Allocation(id="a1", name="web[0]", task_states={"t": TaskState(state=TaskStatus.RUNNING)})
    job = Job(id="web")
    stamp = codec_diff.replacer(Allocation, "job", "create_index")
    got = stamp(alloc, job, 7)
    assert got == dataclasses.replace(alloc, job=job, create_index=7) and type(got) is Allocation
    assert alloc.job is None and alloc.create_index == 0  # the original is not touched
    assert got.task_states is alloc.task_states  # unchanged fields are shared, not copied
    assert codec_diff.replacer(Allocation, "job", "create_index") is stamp  # generated once
    with pytest.raises(TypeError, match="no field"):
        codec_diff.replacer(Allocation, "nope")

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Unslotted:
        x: int = 0

    with pytest.raises(TypeError, match="slotted"):
        codec_diff.replacer(Unslotted, "x")


def test_constructor_builds_what_the_class_builds_and_the_result_stays_frozen() -> None:
    from nomadd.structs.variables import VariableEncrypted

    make = codec.constructor(Allocation)
    kw = {"id": "a1", "name": "web[0]", "task_states": {"t": TaskState(state=TaskStatus.RUNNING)}}
    got = make(**kw)
    assert got == Allocation(**kw) and type(got) is Allocation  # type: ignore[arg-type]
    bare = {k: v for k, v in kw.items() if k != "task_states"}
    assert make(**bare).task_states == {} and make(**bare).task_states is not make(**bare).task_states
    with pytest.raises(TypeError):
        make(nope=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.id = "b"  # type: ignore[misc]
    assert codec.constructor(Allocation) is make  # generated once
    # fields inherited from a slotted base class are set too
    var = codec.constructor(VariableEncrypted)(namespace="n", path="p", key_id="k", data=b"x")
    assert var == VariableEncrypted(namespace="n", path="p", key_id="k", data=b"x")

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Unslotted:
        x: int = 0

    assert codec.constructor(Unslotted) is Unslotted  # its own __init__ runs


def test_placement_ids_are_uuid4() -> None:
    import uuid

    from nomadd.scheduler.context import Env

    ids = {Env(rng=__import__("random").Random(0)).new_id() for _ in range(200)}
    assert len(ids) == 200
    for i in ids:
        parsed = uuid.UUID(i)
        assert str(parsed) == i and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_fast_replace_is_dataclasses_replace() -> None:
    alloc = Allocation(id="a1", name="web[0]", task_states={"t": TaskState(state=TaskStatus.RUNNING)})
    got = codec_diff.fast_replace(alloc, modify_index=3, name="web[1]")
    assert got == dataclasses.replace(alloc, modify_index=3, name="web[1]") and type(got) is Allocation
    assert alloc.modify_index == 0 and alloc.name == "web[0]"  # the original is not touched
    with pytest.raises(TypeError):
        codec_diff.fast_replace(alloc, nope=1)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Unslotted:
        x: int = 0
        y: int = 0

    assert codec_diff.fast_replace(Unslotted(x=1), y=2) == Unslotted(x=1, y=2)
    assert codec_diff.fast_replace(Unslotted(x=1), y=3) == Unslotted(x=1, y=3)  # the cached path


def test_constructor_leaves_classes_with_their_own_init_alone() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Own:
        x: int = 0

        def __init__(self, *, x: int = 0) -> None:
            object.__setattr__(self, "x", x * 2)

    assert codec.constructor(Own) is Own
    assert from_wire(Own, {"x": 2}).x == 4

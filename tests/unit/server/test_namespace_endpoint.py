"""Namespace.* and NodePool.* RPCs on a fake-Raft server: built-ins, refusals worded as Nomad's,
all-or-nothing deletes, the admission checks of Job.Register, follower replay and snapshots."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomadd.server.state import store_namespaces
from nomadd.server.state.store import StateStore
from nomadd.structs.errors import NotFoundError, RPCError, ValidationError
from nomadd.structs.namespace import Namespace, NamespaceCapabilities, NodePool
from nomadd.structs.requests.namespace import (
    NAMESPACE_DELETE,
    NAMESPACE_GET,
    NAMESPACE_LIST,
    NAMESPACE_UPSERT,
    NODE_POOL_DELETE,
    NODE_POOL_GET,
    NODE_POOL_JOBS,
    NODE_POOL_LIST,
    NODE_POOL_NODES,
    NODE_POOL_UPSERT,
    NamedDeleteRequest,
    NamedGetRequest,
    NamedListRequest,
    NamespaceUpsertRequest,
    NodePoolUpsertRequest,
)
from nomadd.structs.requests.variables import VARIABLES_APPLY, VariablesApplyRequest, VarOp
from tests.unit.server.fakes import FakeServer, api_job


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _names(reply: Any, attr: str) -> list[str]:
    return [o.name for o in getattr(reply, attr)]


def test_default_namespace_exists_and_cannot_be_deleted() -> None:
    async def main() -> None:
        server = FakeServer()
        assert _names(await server.rpc(NAMESPACE_LIST, NamedListRequest()), "namespaces") == ["default"]
        got = await server.rpc(NAMESPACE_GET, NamedGetRequest(name="default"))
        assert got.namespace is not None and got.namespace.description == "Default shared namespace"
        with pytest.raises(ValidationError, match="can not delete default namespace"):
            await server.rpc(NAMESPACE_DELETE, NamedDeleteRequest(names=("default",)))

    _run(main())


def test_namespace_lifecycle_and_refusals() -> None:
    async def main() -> None:
        server = FakeServer()
        ns = Namespace(name="prod", description="production", meta={"team": "a"})
        await server.rpc(NAMESPACE_UPSERT, NamespaceUpsertRequest(namespaces=(ns,)))
        got = (await server.rpc(NAMESPACE_GET, NamedGetRequest(name="prod"))).namespace
        assert got is not None and got.meta == {"team": "a"} and got.create_index == got.modify_index > 0
        assert _names(await server.rpc(NAMESPACE_LIST, NamedListRequest(prefix="p")), "namespaces") == [
            "prod"
        ]
        # a job in it: the namespace cannot go while the job is not dead
        await server.register_job({**api_job("web"), "Namespace": "prod"})
        with pytest.raises(ValidationError, match='contains at least one non-terminal job "web"'):
            await server.rpc(NAMESPACE_DELETE, NamedDeleteRequest(names=("prod",)))
        assert (await server.rpc(NAMESPACE_GET, NamedGetRequest(name="prod"))).namespace is not None
        with pytest.raises(NotFoundError, match="namespace not found"):
            await server.rpc(NAMESPACE_DELETE, NamedDeleteRequest(names=("nope",)))

    _run(main())


def test_namespace_with_variables_cannot_be_deleted() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_namespace("apps")
        await server.rpc(
            VARIABLES_APPLY,
            VariablesApplyRequest(op=VarOp.SET, path="a/b", items={"k": "v"}, namespace="apps"),
        )
        with pytest.raises(ValidationError, match='namespace "apps" contains at least one variable'):
            await server.rpc(NAMESPACE_DELETE, NamedDeleteRequest(names=("apps",)))
        await server.rpc(
            VARIABLES_APPLY, VariablesApplyRequest(op=VarOp.DELETE, path="a/b", namespace="apps")
        )
        await server.rpc(NAMESPACE_DELETE, NamedDeleteRequest(names=("apps",)))
        assert (await server.rpc(NAMESPACE_GET, NamedGetRequest(name="apps"))).namespace is None

    _run(main())


def test_delete_is_all_or_nothing() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_namespace("a")
        with pytest.raises(RPCError):
            await server.rpc(NAMESPACE_DELETE, NamedDeleteRequest(names=("a", "missing")))
        assert (await server.rpc(NAMESPACE_GET, NamedGetRequest(name="a"))).namespace is not None

    _run(main())


@pytest.mark.parametrize(
    ("name", "message"),
    [("bad name", "invalid name"), ("", "invalid name"), ("x" * 129, "invalid name")],
)
def test_invalid_namespaces_are_refused(name: str, message: str) -> None:
    async def main() -> None:
        server = FakeServer()
        with pytest.raises(ValidationError, match=message):
            await server.rpc(NAMESPACE_UPSERT, NamespaceUpsertRequest(namespaces=(Namespace(name=name),)))
        ns = Namespace(name="ok", description="d" * 257)
        with pytest.raises(ValidationError, match="description longer than 256"):
            await server.rpc(NAMESPACE_UPSERT, NamespaceUpsertRequest(namespaces=(ns,)))

    _run(main())


def test_register_into_a_missing_namespace_or_pool_fails_as_nomad() -> None:
    async def main() -> None:
        server = FakeServer()
        with pytest.raises(ValidationError, match='job "web" is in nonexistent namespace "nope"'):
            await server.register_job({**api_job("web"), "Namespace": "nope"})
        with pytest.raises(ValidationError, match='job "web" is in nonexistent node pool "gpu"'):
            await server.register_job({**api_job("web"), "NodePool": "gpu"})
        await server.rpc(NODE_POOL_UPSERT, NodePoolUpsertRequest(pools=(NodePool(name="gpu"),)))
        await server.register_job({**api_job("web"), "NodePool": "gpu"})
        await server.register_job({**api_job("any"), "NodePool": "all"})

    _run(main())


def test_node_pools_builtins_nodes_and_jobs() -> None:
    async def main() -> None:
        server = FakeServer()
        assert _names(await server.rpc(NODE_POOL_LIST, NamedListRequest()), "pools") == ["all", "default"]
        with pytest.raises(ValidationError, match='modifying node pool "all" is not allowed'):
            await server.rpc(NODE_POOL_UPSERT, NodePoolUpsertRequest(pools=(NodePool(name="all"),)))
        with pytest.raises(ValidationError, match='deleting node pool "default" is not allowed'):
            await server.rpc(NODE_POOL_DELETE, NamedDeleteRequest(names=("default",)))
        # a node naming a pool nobody created makes it exist (Nomad creates it on registration)
        node = await server.add_node(node_pool="edge")
        await server.add_node()
        pools = await server.rpc(NODE_POOL_LIST, NamedListRequest())
        assert _names(pools, "pools") == ["all", "default", "edge"]
        nodes = await server.rpc(NODE_POOL_NODES, NamedGetRequest(name="edge"))
        assert [n.id for n in nodes.nodes] == [node.id]
        assert len((await server.rpc(NODE_POOL_NODES, NamedGetRequest(name="all"))).nodes) == 2
        await server.rpc(
            NODE_POOL_UPSERT, NodePoolUpsertRequest(pools=(NodePool(name="edge", description="e"),))
        )
        with pytest.raises(ValidationError, match='node pool "edge" has nodes in regions: \\[global\\]'):
            await server.rpc(NODE_POOL_DELETE, NamedDeleteRequest(names=("edge",)))
        await server.rpc(NODE_POOL_UPSERT, NodePoolUpsertRequest(pools=(NodePool(name="batch"),)))
        await server.register_job({**api_job("j"), "NodePool": "batch"})
        jobs = await server.rpc(NODE_POOL_JOBS, NamedGetRequest(name="batch"))
        assert [j.id for j in jobs.jobs] == ["j"]
        with pytest.raises(ValidationError, match='node pool "batch" has non-terminal jobs'):
            await server.rpc(NODE_POOL_DELETE, NamedDeleteRequest(names=("batch",)))
        with pytest.raises(NotFoundError):
            await server.rpc(NODE_POOL_NODES, NamedGetRequest(name="missing"))
        got = await server.rpc(NODE_POOL_GET, NamedGetRequest(name="edge"))
        assert got.pool is not None and got.pool.description == "e"

    _run(main())


def test_followers_and_snapshots_hold_the_same_namespaces_and_pools() -> None:
    async def main() -> None:
        server = FakeServer()
        await server.add_namespace("a")
        await server.rpc(
            NODE_POOL_UPSERT, NodePoolUpsertRequest(pools=(NodePool(name="p", meta={"k": "v"}),))
        )
        follower = server.follower().store.snapshot()
        leader = server.store.snapshot()
        assert store_namespaces.list_namespaces(follower) == store_namespaces.list_namespaces(leader)
        assert store_namespaces.list_pools(follower) == store_namespaces.list_pools(leader)
        restored = StateStore()
        restored.restore(server.store.dump())
        assert store_namespaces.list_pools(restored.snapshot()) == store_namespaces.list_pools(leader)
        assert store_namespaces.get_namespace(restored.snapshot(), "a") is not None

    _run(main())


def test_namespace_capabilities_limit_the_task_drivers() -> None:
    async def main() -> None:
        server = FakeServer()
        caps = NamespaceCapabilities(disabled_task_drivers=("raw_exec",))
        await server.rpc(
            NAMESPACE_UPSERT,
            NamespaceUpsertRequest(namespaces=(Namespace(name="locked", capabilities=caps),)),
        )
        with pytest.raises(
            ValidationError, match='used task driver "raw_exec" is not allowed in namespace "locked"'
        ):
            await server.register_job({**api_job("web"), "Namespace": "locked"})
        only_exec = Namespace(
            name="exec-only", capabilities=NamespaceCapabilities(enabled_task_drivers=("exec",))
        )
        await server.rpc(NAMESPACE_UPSERT, NamespaceUpsertRequest(namespaces=(only_exec,)))
        with pytest.raises(ValidationError, match="not allowed"):
            await server.register_job({**api_job("web"), "Namespace": "exec-only"})
        job = api_job("web")
        job["TaskGroups"][0]["Tasks"][0]["Driver"] = "exec"
        await server.register_job({**job, "Namespace": "exec-only"})

    _run(main())

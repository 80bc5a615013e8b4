"""Variables.* RPCs on a fake-Raft server: typed entries, check-and-set, validation, blocking reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nomadd.rpc import decode_request, encode_request
from nomadd.server.state import store_variables
from nomadd.structs.errors import RPCError, ValidationError
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.keyring import (
    KEYRING_LIST,
    KEYRING_ROTATE,
    KeyringListRequest,
    KeyringRotateRequest,
    RootKeyState,
)
from nomadd.structs.requests.variables import (
    VARIABLES_APPLY,
    VARIABLES_LIST,
    VARIABLES_READ,
    VariablesApplyRequest,
    VariablesListRequest,
    VariablesReadRequest,
    VarOp,
)
from nomadd.structs.variables import VariableMetadata
from tests.unit.server.fakes import FakeServer


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _set(path: str, cas: int | None = None, **items: str) -> VariablesApplyRequest:
    return VariablesApplyRequest(op=VarOp.SET, path=path, items=items or {"k": "v"}, cas=cas)


def test_set_read_list_and_cas() -> None:
    async def main() -> None:
        server = FakeServer()
        made = await server.rpc(VARIABLES_APPLY, _set("/app/db/", b="2", a="1"))
        assert not made.conflict and made.var is not None
        assert made.var.path == "app/db" and list(made.var.items) == ["a", "b"]  # sorted
        assert made.var.create_index == made.var.modify_index == made.meta.index
        # the first write makes the first root key
        assert server.raft.applied == [MessageType.ROOT_KEY_UPSERT, MessageType.VAR_UPSERT]
        # cas=0: only when absent
        clash = await server.rpc(VARIABLES_APPLY, _set("app/db", cas=0))
        assert clash.conflict and clash.var == made.var
        stale = await server.rpc(VARIABLES_APPLY, _set("app/db", cas=made.meta.index - 1))
        assert stale.conflict
        updated = await server.rpc(VARIABLES_APPLY, _set("app/db", cas=made.meta.index, x="y"))
        assert not updated.conflict and updated.var is not None and dict(updated.var.items) == {"x": "y"}
        assert updated.var.create_index == made.var.create_index
        read = await server.rpc(VARIABLES_READ, VariablesReadRequest(path="app/db"))
        assert read.var == updated.var and read.meta.index == updated.meta.index
        await server.rpc(VARIABLES_APPLY, _set("other"))
        listed = await server.rpc(VARIABLES_LIST, VariablesListRequest(prefix="app"))
        assert listed.vars == (updated.var.metadata(),)
        assert isinstance(listed.vars[0], VariableMetadata)
        gone = await server.rpc(VARIABLES_APPLY, VariablesApplyRequest(op=VarOp.DELETE, path="app/db", cas=1))
        assert gone.conflict
        gone = await server.rpc(VARIABLES_APPLY, VariablesApplyRequest(op=VarOp.DELETE, path="app/db"))
        assert not gone.conflict and gone.var is None
        assert (await server.rpc(VARIABLES_READ, VariablesReadRequest(path="app/db"))).var is None
        # the follower decoded every entry from bytes and holds the same row
        follower = server.follower()
        assert follower.store.dump() == server.store.dump()

    _run(main())


def test_bad_requests_are_validation_errors() -> None:
    async def main() -> None:
        server = FakeServer()
        for path in ("", "/", "a//b", "a/../b", "x" * 129):
            with pytest.raises(ValidationError, match="invalid variable path"):
                await server.rpc(VARIABLES_APPLY, _set(path))
        with pytest.raises(ValidationError, match="non-empty"):
            await server.rpc(VARIABLES_APPLY, VariablesApplyRequest(op=VarOp.SET, path="p"))
        with pytest.raises(ValidationError, match="negative"):
            await server.rpc(VARIABLES_APPLY, _set("p", cas=-1))
        with pytest.raises(ValidationError, match="invalid variable path"):
            await server.rpc(VARIABLES_READ, VariablesReadRequest(path=".."))
        assert server.raft.applied == []
        # on the wire: an unknown op or non-string items are refused when decoded
        body = encode_request(_set("p")).replace(b"\xa3set", b"\xa3bad")
        with pytest.raises(ValidationError, match="op"):
            decode_request(VariablesApplyRequest, body)
        body = encode_request(_set("p", k="v")).replace(b"\xa1v", b"\x05")
        with pytest.raises(ValidationError, match="items"):
            decode_request(VariablesApplyRequest, body)

    _run(main())


def test_read_blocks_until_the_variable_changes() -> None:
    async def main() -> None:
        server = FakeServer()
        first = await server.rpc(VARIABLES_APPLY, _set("p"))
        req = VariablesReadRequest(path="p", min_query_index=first.meta.index, max_query_time_s=5)
        waiting = asyncio.ensure_future(server.rpc(VARIABLES_READ, req))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        second = await server.rpc(VARIABLES_APPLY, _set("p", a="2"))
        reply = await asyncio.wait_for(waiting, 5)
        assert reply.meta.index == second.meta.index and reply.var == second.var

    _run(main())


def test_items_are_sealed_in_entries_and_state_and_read_back_after_rotation() -> None:
    async def main() -> None:
        server = FakeServer(raft_secret="cluster-secret-0123456789")
        marker = "MARKER-7f3a9c"
        await server.rpc(VARIABLES_APPLY, _set("app/one", secret=marker))
        first = (await server.rpc(KEYRING_LIST, KeyringListRequest())).keys
        assert [k.state for k in first] == [RootKeyState.ACTIVE]
        rotated = await server.rpc(KEYRING_ROTATE, KeyringRotateRequest())
        assert rotated.key.key_id != first[0].key_id
        await server.rpc(VARIABLES_APPLY, _set("app/two", secret=marker))
        keys = {k.key_id: k.state for k in (await server.rpc(KEYRING_LIST, KeyringListRequest())).keys}
        assert keys == {first[0].key_id: RootKeyState.INACTIVE, rotated.key.key_id: RootKeyState.ACTIVE}
        snap = server.store.snapshot()
        one, two = (store_variables.get(snap, "default", p) for p in ("app/one", "app/two"))
        assert one is not None and two is not None
        assert (one.key_id, two.key_id) == (first[0].key_id, rotated.key.key_id)
        # no Raft entry, no state dump holds the items in the clear
        assert all(marker.encode() not in payload for _, _, payload in server.raft.entries)
        assert marker.encode() not in server.store.dump()
        for path in ("app/one", "app/two"):
            read = await server.rpc(VARIABLES_READ, VariablesReadRequest(path=path))
            assert read.var is not None and dict(read.var.items) == {"secret": marker}
        # another server replaying the entries (same cluster secret) reads them too
        other = FakeServer(raft_secret="cluster-secret-0123456789")
        for index, msg_type, payload in server.raft.entries:
            other.fsm.apply(index, msg_type, payload)
        read = await other.rpc(VARIABLES_READ, VariablesReadRequest(path="app/one"))
        assert read.var is not None and dict(read.var.items) == {"secret": marker}

    _run(main())


def test_a_server_with_another_cluster_secret_cannot_open_the_items() -> None:
    async def main() -> None:
        server = FakeServer(raft_secret="cluster-secret-0123456789")
        await server.rpc(VARIABLES_APPLY, _set("app/one", secret="s"))
        other = FakeServer(raft_secret="another-secret-0123456789")
        other.store.restore(server.store.dump())
        with pytest.raises(RPCError, match="cannot be unwrapped"):
            await other.rpc(VARIABLES_READ, VariablesReadRequest(path="app/one"))

    _run(main())

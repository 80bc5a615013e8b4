"""FSM.apply called directly: variables, check-and-set, fatal decode errors."""

from __future__ import annotations

import dataclasses

import pytest

from nomadd.server.fsm import FSM, FSMFatalError
from nomadd.server.fsm.dispatch import entry_kinds
from nomadd.server.state import store_variables
from nomadd.server.state.store import StateStore
from nomadd.structs.codec import pack
from nomadd.structs.messages import IGNORE_UNKNOWN_FLAG, MessageType
from nomadd.structs.requests.variables import VarDeleteEntry, VarUpsertEntry
from tests.unit.server.fakes import make_fsm


def _upsert(fsm: FSM, index: int, path: str, cas: int | None = None) -> object:
    entry = VarUpsertEntry(
        namespace="default", path=path, key_id="k", data=str(index).encode(), time=index * 10, cas=cas
    )
    return fsm.apply(index, MessageType.VAR_UPSERT, pack(entry))


def test_upsert_then_cas() -> None:
    fsm = make_fsm()
    r1 = _upsert(fsm, 5, "p")
    assert isinstance(r1, store_variables.VarApplyResult)
    assert r1.current is not None
    assert (r1.current.create_index, r1.current.modify_index) == (5, 5)
    r2 = _upsert(fsm, 6, "p", cas=4)
    assert isinstance(r2, store_variables.VarApplyResult)
    assert r2.conflict
    assert r2.current == r1.current
    r3 = _upsert(fsm, 7, "p", cas=5)
    assert isinstance(r3, store_variables.VarApplyResult)
    assert not r3.conflict
    assert r3.current is not None
    assert (r3.current.create_index, r3.current.modify_index) == (5, 7)
    assert (r3.current.create_time, r3.current.modify_time) == (50, 70)


def test_delete_with_cas() -> None:
    fsm = make_fsm()
    _upsert(fsm, 2, "p")
    req = VarDeleteEntry(namespace="default", path="p", cas=1)
    res = fsm.apply(3, MessageType.VAR_DELETE, pack(req))
    assert isinstance(res, store_variables.VarApplyResult)
    assert res.conflict
    req = dataclasses.replace(req, cas=2)
    res = fsm.apply(4, MessageType.VAR_DELETE, pack(req))
    assert isinstance(res, store_variables.VarApplyResult)
    assert not res.conflict
    assert store_variables.get(fsm.store.snapshot(), "default", "p") is None
    assert fsm.store.table_index(store_variables.TABLE) == 4


def test_undecodable_entry_is_fatal() -> None:
    fsm = make_fsm()
    with pytest.raises(FSMFatalError):
        fsm.apply(1, MessageType.VAR_UPSERT, b"\xc1not msgpack")


def test_unknown_type_is_fatal_unless_flagged() -> None:
    fsm = make_fsm()
    with pytest.raises(FSMFatalError):
        fsm.apply(1, 120, b"")
    assert fsm.apply(2, IGNORE_UNKNOWN_FLAG | 120, b"") is None
    assert fsm.store.latest_index() == 2


def test_listeners_see_every_applied_entry() -> None:
    fsm = make_fsm()
    seen: list[tuple[int, int]] = []
    fsm.add_listener(lambda index, mt, _res: seen.append((index, mt)))
    _upsert(fsm, 3, "x")
    fsm.apply(4, MessageType.NOOP, b"")
    assert seen == [(3, MessageType.VAR_UPSERT), (4, MessageType.NOOP)]


def test_the_proposers_entry_is_used_once_instead_of_decoding() -> None:
    decoded: list[bytes] = []
    kinds = entry_kinds()
    real = kinds[MessageType.VAR_UPSERT]

    def counting(payload: bytes) -> object:
        decoded.append(payload)
        return real.decode(payload)

    kinds[MessageType.VAR_UPSERT] = dataclasses.replace(real, decode=counting)
    fsm = FSM(StateStore(), kinds)
    req = VarUpsertEntry(namespace="default", path="p", key_id="k", data=b"1", time=10)
    payload = fsm.encode(MessageType.VAR_UPSERT, req)
    fsm.expect(payload, req)
    fsm.expect(payload, req)  # the same bytes proposed twice: both applications use it
    fsm.apply(1, MessageType.VAR_UPSERT, payload)
    fsm.apply(2, MessageType.VAR_UPSERT, payload)
    assert decoded == []
    fsm.apply(3, MessageType.VAR_UPSERT, payload)  # nothing expected any more: decoded
    assert decoded == [payload]
    fsm.expect(payload, req)
    fsm.forget(payload)  # the proposal failed
    fsm.apply(4, MessageType.VAR_UPSERT, payload)
    assert len(decoded) == 2
    var = store_variables.get(fsm.store.snapshot(), "default", "p")
    assert var is not None and var.modify_index == 4


def test_every_message_type_has_a_case_or_is_marked_ignorable() -> None:
    kinds = entry_kinds()
    missing = [t.name for t in MessageType if int(t) not in kinds]
    assert missing == [], f"message types without an FSM case: {missing}"
    assert set(kinds) <= {int(t) for t in MessageType}, "a case for a type MessageType does not define"
    ignorable = sorted(MessageType(t).name for t, k in kinds.items() if k.ignorable)
    assert ignorable == []

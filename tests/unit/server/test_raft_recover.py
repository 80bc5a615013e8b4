"""``operator raft recover`` on real pysyncobj members (in-process, 127.0.0.1): a survivor of a lost
majority keeps every entry it holds (dump + journal tail) and forms a new cluster."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from nomadd.server.raft import Raft
from nomadd.server.raft_recover import RecoverError, recover
from nomadd.server.state import store_variables
from nomadd.structs.codec import pack
from nomadd.structs.messages import MessageType
from nomadd.structs.requests.variables import VarUpsertEntry
from tests.unit.server.server_helpers import free_port, make_raft, wait_leader, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]


def _put(path: str, value: str) -> bytes:
    return pack(VarUpsertEntry(namespace="default", path=path, key_id="k", data=value.encode(), time=1))


def _values(r: Raft) -> dict[str, str]:
    snap = r.fsm.store.snapshot()
    return {v.path: v.data.decode() for v in snap.table(store_variables.TABLE).values()}


async def _write(r: Raft, prefix: str, n: int) -> None:
    for i in range(n):
        await r.apply(MessageType.VAR_UPSERT, _put(f"{prefix}{i}", str(i)))


def test_survivor_of_a_lost_majority_recovers_all_entries_and_takes_new_members(tmp_path: Path) -> None:
    async def main() -> None:
        addrs = [f"127.0.0.1:{free_port()}" for _ in range(3)]
        dirs = [tmp_path / f"s{i}" for i in range(3)]
        rafts = [make_raft(a, addrs, d) for a, d in zip(addrs, dirs, strict=True)]
        for r in rafts:
            await r.start()
        leader = await wait_leader(rafts)
        await _write(leader, "dumped", 60)
        for r in rafts:
            assert r._node is not None
            r._node.forceLogCompaction()
        await wait_until(lambda: all((d / "raft.dump").exists() for d in dirs), what="dumps written")
        await _write(leader, "tail", 25)  # only in the journals
        want = _values(leader)
        await wait_until(lambda: all(_values(r) == want for r in rafts), what="replicated")
        await asyncio.gather(*(r.shutdown() for r in rafts))

        # two servers are destroyed with their data; the survivor alone has no quorum
        survivor, sdir = addrs[2], dirs[2]
        for d in dirs[:2]:
            shutil.rmtree(d)
        alone = make_raft(survivor, addrs, sdir)
        await alone.start()
        await asyncio.sleep(2.0)
        assert not alone.is_leader()
        await alone.shutdown()

        result = recover(sdir, [survivor])
        assert result.peers == (survivor,) and result.replayed >= 25
        assert json.loads((sdir / "peers.json").read_text()) == [survivor]
        assert (result.backup / "raft.dump").exists()

        r = make_raft(survivor, addrs, sdir)  # bootstrap peers are ignored: the state has one peer
        await r.start()
        try:
            await wait_leader([r], timeout=10)
            await wait_until(lambda: _values(r) == want, what="recovered state")
            assert r.peers() == [survivor]
            await _write(r, "after", 3)
            # a new, empty server joins and receives everything
            new_addr = f"127.0.0.1:{free_port()}"
            new = make_raft(new_addr, [survivor, new_addr], tmp_path / "new")
            await new.start()  # running before it is added: 2 voters need both (as the agent does)
            try:
                await r.add_peer(new_addr)
                full = _values(r)
                await wait_until(lambda: _values(new) == full, timeout=15, what="new member caught up")
                assert len(full) == 60 + 25 + 3
            finally:
                await new.shutdown()
        finally:
            await r.shutdown()

    asyncio.run(main())


def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with pytest.raises(RecoverError, match="no raft state"):
        recover(tmp_path, ["127.0.0.1:4647"])
    (tmp_path / "raft.dump").write_bytes(b"garbage")
    for peers, why in (([], "no peers"), (["nope"], "not an IP:port"), (["1.2.3.4:1", "1.2.3.4:1"], "twice")):
        with pytest.raises(RecoverError, match=why):
            recover(tmp_path, peers)
    with pytest.raises(RecoverError, match="cannot read"):
        recover(tmp_path, ["127.0.0.1:4647"])
    assert (tmp_path / "raft.dump").read_bytes() == b"garbage"

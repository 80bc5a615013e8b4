"""Issue 9 acceptance 5: variable items appear in no journal, snapshot or Raft entry bytes, and
read back after a full-cluster restart and after a root key rotation; the gossip key rotates
(install, use, remove) without splitting the servers, and survives a restart in its 0600 file.

* three real server agents: write variables carrying a marker, grep every file under the data
  dirs, restart the whole cluster, rotate the root key (CLI), write again, restart again;
* one real pysyncobj member in-process, forced to compact, so its ``raft.dump`` (the snapshot)
  exists to be grepped too, and comes back after a restart.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from nomadd.server.acl.resolver import ACLResolver, local_source
from nomadd.server.blocking import BlockingQueries
from nomadd.server.config import ServerConfig
from nomadd.server.context import RPCDispatch, ServerContext
from nomadd.server.keyring import Keyring, KeyringEndpoint
from nomadd.server.raft import Raft
from nomadd.server.state import store_variables
from nomadd.server.var_endpoint import VariablesEndpoint
from nomadd.structs.requests.keyring import KeyringRotateRequest
from nomadd.structs.requests.variables import VariablesApplyRequest, VariablesReadRequest, VarOp
from tests.helpers import wait_for
from tests.integration.cluster import Agent, Cluster
from tests.unit.server.server_helpers import PASSWORD, free_port, make_raft, wait_leader, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]

MARKER = "SECRET-MARKER-4c1d9e"


def files_holding(dirs: Iterable[Path], needle: bytes) -> list[str]:
    """Files under ``dirs`` holding ``needle``, gzip files (the Raft dump) searched unpacked."""
    hits: list[str] = []
    for d in dirs:
        for f in sorted(p for p in d.rglob("*") if p.is_file()):
            data = f.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data += gzip.decompress(data)
            if needle in data:
                hits.append(f.name)
    return hits


def read_items(agent: Agent, path: str) -> dict[str, str]:
    got: dict[str, str] = agent.api("GET", f"/v1/var/{path}")["Items"]
    return got


def restart_all(cluster: Cluster, servers: list[Agent]) -> Agent:
    for s in servers:
        s.kill()
    for s in servers:
        s.wait_exit()
    for s in servers:
        s.start()
    return cluster.wait_leader(servers, timeout=60)


def rotate_gossip_key(leader: Agent, old: str, new: str) -> None:
    """Nomad's rotation: install the new key everywhere, make it primary, remove the old one."""
    assert leader.cli("operator", "gossip", "keyring", "-install", new).returncode == 0
    assert leader.api("GET", "/v1/agent/keyring/list")["Keys"] == {old: 3, new: 3}
    assert leader.cli("operator", "gossip", "keyring", "-remove", old).returncode != 0  # still primary
    assert leader.cli("operator", "gossip", "keyring", "-use", new).returncode == 0
    assert leader.cli("operator", "gossip", "keyring", "-remove", old).returncode == 0
    listed = leader.cli("operator", "gossip", "keyring", "-list").stdout
    assert new in listed and "3/3" in listed and old not in listed


def test_three_servers_keep_items_sealed_through_restart_and_rotation(tmp_path: Path) -> None:
    old_gossip_key = base64.b64encode(os.urandom(32)).decode()
    cluster = Cluster(tmp_path, encrypt=old_gossip_key)
    try:
        servers = [cluster.add_server(bootstrap_expect=3) for _ in range(3)]
        cluster.link(servers)
        for s in servers:
            s.start()
        leader = cluster.wait_leader(servers, timeout=40)
        for i in range(5):
            leader.api("PUT", f"/v1/var/app/v{i}", {"Items": {"password": f"{MARKER}-{i}", MARKER: "k"}})
        assert read_items(leader, "app/v0") == {"password": f"{MARKER}-0", MARKER: "k"}
        data_dirs = [s.data_dir for s in servers]
        wait_for(
            lambda: all((d / "server" / "raft" / "raft.journal").exists() for d in data_dirs), what="journals"
        )
        assert files_holding(data_dirs, b"password") == []  # keys of the items are sealed too
        assert files_holding(data_dirs, MARKER.encode()) == []

        leader = restart_all(cluster, servers)
        want = {"password": f"{MARKER}-4", MARKER: "k"}
        wait_for(lambda: all(read_items(s, "app/v4") == want for s in servers), timeout=30, what="reads")

        out = leader.cli("operator", "root", "keyring", "rotate", "-json")
        assert out.returncode == 0, out.stderr
        new_key = json.loads(out.stdout)["KeyID"]
        listed = json.loads(leader.cli("operator", "root", "keyring", "list", "-json").stdout)
        assert {k["KeyID"]: k["State"] for k in listed}[new_key] == "active"
        assert sorted(k["State"] for k in listed) == ["active", "inactive"]
        table = leader.cli("operator", "root", "keyring", "list").stdout
        assert table.splitlines()[0].split() == ["Key", "State", "Create", "Time"]
        leader.api("PUT", "/v1/var/app/after", {"Items": {"password": f"{MARKER}-after"}})
        assert read_items(leader, "app/v1")["password"] == f"{MARKER}-1"  # sealed by the old key
        assert read_items(leader, "app/after") == {"password": f"{MARKER}-after"}

        new_gossip_key = base64.b64encode(os.urandom(32)).decode()
        rotate_gossip_key(leader, old_gossip_key, new_gossip_key)

        # the keyring file (0600) wins over server.encrypt, which still holds the old key
        leader = restart_all(cluster, servers)
        for d in data_dirs:
            key_file = d / "server" / "serf.keyring"
            assert key_file.stat().st_mode & 0o777 == 0o600
            assert json.loads(key_file.read_text()) == [new_gossip_key]
        wait_for(
            lambda: all(sorted(Cluster.members(s).values()) == ["alive"] * 3 for s in servers),
            timeout=30,
            what="every server sees the others alive over the new gossip key",
        )
        assert leader.api("GET", "/v1/agent/keyring/list")["Keys"] == {new_gossip_key: 3}
        wait_for(lambda: read_items(leader, "app/after") == {"password": f"{MARKER}-after"}, timeout=30)
        assert read_items(leader, "app/v2")["password"] == f"{MARKER}-2"
        assert files_holding(data_dirs, MARKER.encode()) == []
    finally:
        cluster.close()


def _context(raft: Raft, secret: str) -> ServerContext:
    """What the endpoints need, around one real Raft member (no RPC between servers here)."""
    store = raft.fsm.store

    async def dispatch(method: object, req: object) -> object:
        raise AssertionError("not used")

    config = ServerConfig(enabled=True, raft_secret=secret)
    return ServerContext(
        config=config,
        store=store,
        fsm=raft.fsm,
        raft=raft,
        blocking=BlockingQueries(store, raft),
        rpc=RPCDispatch(dispatch),
        register_leader_component=lambda c: None,
        servers=list,
        http_addr="",
        raft_addr=raft.config.self_addr,
        acl=ACLResolver(config.acl, local_source(store.snapshot)),
    )


def test_snapshot_and_journal_of_a_real_raft_member_hold_no_items(tmp_path: Path) -> None:
    secret = PASSWORD + "-cluster"

    async def main() -> None:
        addr = f"127.0.0.1:{free_port()}"
        r = make_raft(addr, [], tmp_path / "n")
        try:
            await r.start()
            await wait_leader([r])
            ctx = _context(r, secret)
            keyring = Keyring(ctx)
            vars_ = VariablesEndpoint(ctx, keyring)
            for i in range(50):
                req = VariablesApplyRequest(op=VarOp.SET, path=f"s/{i}", items={"v": f"{MARKER}-{i}"})
                await vars_.apply(req)
            first_key = store_variables.get(r.fsm.store.snapshot(), "default", "s/0")
            rotated = await KeyringEndpoint(ctx, keyring).rotate(KeyringRotateRequest())
            await vars_.apply(VariablesApplyRequest(op=VarOp.SET, path="s/new", items={"v": MARKER}))
            new = store_variables.get(r.fsm.store.snapshot(), "default", "s/new")
            assert first_key is not None and new is not None
            assert new.key_id == rotated.key.key_id != first_key.key_id  # new writes use the new key
            assert r._node is not None
            r._node.forceLogCompaction()
            await wait_until((tmp_path / "n" / "raft.dump").exists, what="snapshot written")
            await vars_.apply(VariablesApplyRequest(op=VarOp.SET, path="s/tail", items={"v": MARKER}))
        finally:
            await r.shutdown()
        dump = gzip.decompress((tmp_path / "n" / "raft.dump").read_bytes())
        assert b"s/new" in dump  # the snapshot holds the variables (their paths are not secret)
        assert files_holding([tmp_path / "n"], MARKER.encode()) == []
        r2 = make_raft(addr, [], tmp_path / "n")
        try:
            await r2.start()
            await wait_leader([r2])
            vars2 = VariablesEndpoint(_context(r2, secret), Keyring(_context(r2, secret)))
            await wait_until(
                lambda: store_variables.get(r2.fsm.store.snapshot(), "default", "s/tail") is not None,
                what="state back from the snapshot and the journal tail",
            )
            for path, want in (("s/0", f"{MARKER}-0"), ("s/new", MARKER), ("s/tail", MARKER)):
                got = await vars2.read(VariablesReadRequest(path=path, allow_stale=True))
                assert got.var is not None and dict(got.var.items) == {"v": want}
        finally:
            await r2.shutdown()

    asyncio.run(main())

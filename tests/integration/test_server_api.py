"""One server (bootstrap_expect = 1): Nomad's HTTP shapes, headers, blocking queries, Variables
check-and-set, and the unmodified python-nomad client against them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import nomad
import pytest

from tests.integration.cluster import Cluster, HTTPError

pytestmark = pytest.mark.slow


def test_single_server_api(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        s = cluster.add_server(bootstrap_expect=1)
        s.start()
        cluster.wait_leader([s])
        assert "Bootstrap mode enabled! Potentially unsafe operation." in s.output

        assert s.api("GET", "/v1/status/leader") == s.raft_addr
        assert s.api("GET", "/v1/status/peers") == [s.raft_addr]
        assert s.api("GET", "/v1/regions") == ["global"]
        health = s.api("GET", "/v1/agent/health")
        assert health == {"server": {"ok": True, "message": "ok"}}

        created = s.api("PUT", "/v1/var/app/db", {"Items": {"user": "u", "pass": "p"}})
        assert created["Path"] == "app/db"
        assert created["Namespace"] == "default"
        assert created["CreateIndex"] == created["ModifyIndex"] > 0
        assert isinstance(created["CreateTime"], int)
        index = created["ModifyIndex"]

        # check-and-set: stale index -> 409 with the current variable
        with pytest.raises(HTTPError) as exc:
            s.api("PUT", "/v1/var/app/db", {"Items": {"user": "x"}}, params={"cas": "1"})
        assert exc.value.status == 409
        assert f'"ModifyIndex":{index}' in exc.value.body.replace(" ", "")
        with pytest.raises(HTTPError) as exc:
            s.api("GET", "/v1/var/nope")
        assert exc.value.status == 404

        # blocking query: returns when the table moves past ?index
        _, headers = s.api_meta("GET", "/v1/vars")
        assert int(headers["X-Nomad-Index"]) == index
        assert headers["X-Nomad-KnownLeader"] == "true"
        got: dict[str, object] = {}

        def blocked() -> None:
            t0 = time.monotonic()
            value, h = s.api_meta(
                "GET", "/v1/var/app/db", params={"index": str(index), "wait": "20s"}, timeout=30
            )
            got.update(value=value, index=int(h["X-Nomad-Index"]), took=time.monotonic() - t0)

        t = threading.Thread(target=blocked)
        t.start()
        # give the query time to block; if it has not yet, it returns at once after the write
        # (its index is already past), so the assertions below hold either way
        time.sleep(0.5)
        assert not got
        s.api("PUT", "/v1/var/app/db", {"Items": {"user": "v2"}}, params={"cas": str(index)})
        t.join(15)
        assert got["index"] > index  # type: ignore[operator]
        assert got["took"] < 10  # type: ignore[operator]
        assert got["value"]["Items"] == {"user": "v2"}  # type: ignore[index]
        # an unchanged table: returns after ?wait with the same index
        _, headers = s.api_meta("GET", "/v1/vars")
        current = headers["X-Nomad-Index"]
        t0 = time.monotonic()
        _, headers = s.api_meta("GET", "/v1/vars", params={"index": current, "wait": "300ms"})
        assert 0.25 < time.monotonic() - t0 < 5
        assert headers["X-Nomad-Index"] == current

        # python-nomad, unmodified
        n = nomad.Nomad(host=s.ip, port=s.http_port, timeout=10)
        assert n.status.leader.get_leader() == s.raft_addr
        members = n.agent.get_members()
        assert members["Members"][0]["Name"] == s.member_name
        assert members["Members"][0]["Status"] == "alive"
        conf = n.operator.get_configuration()
        assert conf["Servers"][0]["Leader"] is True
        n.variable.create_variable("py/one", {"Items": {"a": "b"}})
        assert n.variable.get_variable("py/one")["Items"] == {"a": "b"}
        assert [v["Path"] for v in n.variables.get_variables(prefix="py/")] == ["py/one"]
        n.variable.delete_variable("py/one")
        assert n.variables.get_variables(prefix="py/") == []
    finally:
        cluster.close()

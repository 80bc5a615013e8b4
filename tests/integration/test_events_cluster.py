"""docs/events.md: followers serve the event stream from their own FSM. Three real servers; a
stream on a follower sees a job registered through the leader, with the same index."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.integration.cluster import Cluster
from tests.integration.event_load import EventReader, blocked_job

pytestmark = pytest.mark.slow


def test_a_follower_streams_what_the_leader_commits(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        servers, leader = cluster.start_servers(3)
        follower = next(s for s in servers if s is not leader)
        host, port = follower.http_addr.rsplit(":", 1)
        reader = EventReader(int(port), "topic=Job:followed", host=host)
        try:
            # until the follower's stream is subscribed, a register is not seen: register again
            def seen() -> list[dict[str, object]]:
                leader.api("PUT", "/v1/jobs", blocked_job("followed"))
                time.sleep(0.2)
                return reader.events()

            wait_for(seen, timeout=30, what="the follower's stream to show the job")
            event = reader.events()[0]
            assert (event["Topic"], event["Type"], event["Key"]) == ("Job", "JobRegistered", "followed")
            job = leader.api("GET", "/v1/job/followed")
            assert event["Index"] <= job["JobModifyIndex"]
        finally:
            reader.close()
    finally:
        cluster.close()

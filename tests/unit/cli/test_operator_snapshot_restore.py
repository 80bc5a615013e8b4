"""``operator snapshot restore``: the file streamed to the agent with its length (Nomad's CLI
sends it as it reads it), checked here meanwhile, a bad file reported as one whatever the agent
answered."""

from __future__ import annotations

import io
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nomadd.cli import operator_snapshot_restore
from nomadd.helper.snapshot_archive import build_archive
from tests.unit.cli.http_agent import serving

ARCHIVE = build_archive(b"\x81\xa1v\x03" + bytes(range(256)) * 2000, index=9, term=2)


class _Agent:
    """Takes PUT /v1/operator/snapshot, keeps what came, answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                size = int(self.headers.get("Content-Length", "-1"))
                agent.headers.append(dict(self.headers.items()))
                agent.bodies.append(self.rfile.read(size) if size >= 0 else b"")
                body = b"" if agent.status == 200 else b"snapshot is not a valid gzip archive"
                self.send_response(agent.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.http.server_address[1]}"


class _NoWholeRead(io.FileIO):
    """The archive file, refusing to be read whole (``read()`` without a size)."""

    def read(self, size: int | None = -1, /) -> bytes:
        assert size is not None and size >= 0, "the archive was read whole, not streamed"
        return super().read(size)


@pytest.fixture
def agent() -> Iterator[_Agent]:
    a = _Agent()
    with serving(a.http):
        yield a


def test_a_good_archive_is_streamed_with_its_length(
    agent: _Agent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.snap"
    path.write_bytes(ARCHIVE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(operator_snapshot_restore, "open", lambda p, mode: _NoWholeRead(p, "r"), raising=False)
        assert operator_snapshot_restore.run([f"-address={agent.address}", str(path)]) == 0
    assert "Snapshot Restored" in capsys.readouterr().out
    assert agent.bodies == [ARCHIVE]
    assert agent.headers[0]["Content-Length"] == str(len(ARCHIVE))


def test_a_bad_archive_is_reported_as_such_when_the_agent_refuses_it(
    agent: _Agent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.snap"
    path.write_bytes(ARCHIVE[: len(ARCHIVE) // 2])
    agent.status = 400
    assert operator_snapshot_restore.run([f"-address={agent.address}", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Error verifying snapshot file" in err and "truncated" in err, err


def test_a_missing_file_is_an_error_before_any_upload(
    agent: _Agent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert operator_snapshot_restore.run([f"-address={agent.address}", str(tmp_path / "none.snap")]) == 1
    assert "Error reading snapshot file" in capsys.readouterr().err
    assert agent.bodies == []

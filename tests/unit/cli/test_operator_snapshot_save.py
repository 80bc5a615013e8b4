"""``nomadd operator snapshot save``: the archive is checked as it downloads into a temporary
file, renamed only when every check held; a bad download leaves no file behind."""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nomadd.cli import operator_snapshot_save
from nomadd.helper.snapshot_archive import build_archive
from tests.unit.cli.http_agent import serving

ARCHIVE = build_archive(b"\x81\xa1v\x03" + bytes(range(256)) * 2000, index=9, term=2)


class _Agent:
    """Answers GET /v1/operator/snapshot with ``body`` and a Digest of ``digest_of``."""

    def __init__(self) -> None:
        self.body = ARCHIVE
        self.digest_of = ARCHIVE
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-gzip")
                self.send_header("Content-Length", str(len(agent.body)))
                self.send_header("X-Nomad-Index", "9")
                digest = base64.b64encode(hashlib.sha256(agent.digest_of).digest()).decode()
                self.send_header("Digest", f"sha-256={digest}")
                self.end_headers()
                self.wfile.write(agent.body)

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.http.server_address[1]}"


@pytest.fixture
def agent() -> Iterator[_Agent]:
    a = _Agent()
    with serving(a.http):
        yield a


def _save(agent: _Agent, path: Path) -> int:
    return operator_snapshot_save.run([f"-address={agent.address}", str(path)])


def test_a_good_archive_is_written_whole(agent: _Agent, tmp_path: Path) -> None:
    path = tmp_path / "s.snap"
    assert _save(agent, path) == 0
    assert path.read_bytes() == ARCHIVE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.snap"]


@pytest.mark.parametrize("bad", ["corrupt", "truncated", "digest"])
def test_a_bad_download_leaves_no_file(
    agent: _Agent, tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = bytearray(gzip.decompress(ARCHIVE))
    raw[len(raw) // 2] ^= 0xFF
    if bad == "corrupt":  # a state that does not match its checksum
        agent.body = agent.digest_of = gzip.compress(bytes(raw))
    elif bad == "truncated":
        agent.body = agent.digest_of = ARCHIVE[: len(ARCHIVE) // 2]
    else:  # the bytes are a good archive, not the ones the agent meant to send
        agent.digest_of = b"other"
    path = tmp_path / "s.snap"
    assert _save(agent, path) == 1
    assert list(tmp_path.iterdir()) == []
    want = {"corrupt": "checksum mismatch", "truncated": "truncated", "digest": "Digest"}[bad]
    err = capsys.readouterr().err
    assert "Error verifying snapshot file" in err and want in err, err

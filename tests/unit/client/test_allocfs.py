"""The allocation file system stays inside the allocation directory (issue 16 acceptance 4, unit
side): ``..``, absolute paths and symlinks a task made that point outside are refused after every
component is resolved; links that stay inside work."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from nomadd.client import allocfs
from nomadd.client.logs import stream_logs
from nomadd.structs.errors import NotFoundError, ValidationError


@pytest.fixture
def alloc(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("SECRET")
    root = tmp_path / "root" / "a1"
    (root / "alloc" / "logs").mkdir(parents=True)
    (root / "alloc" / "data").mkdir()
    (root / ".executor").mkdir()
    (root / "t" / "local").mkdir(parents=True)
    (root / "t" / "local" / "hello.txt").write_text("hello")
    local = root / "t" / "local"
    os.symlink("/", local / "to_root")
    os.symlink("/etc/shadow", local / "shadow")
    os.symlink("../..", local / "up2")  # = the alloc dir: inside
    os.symlink("../../..", local / "up3")  # = the alloc root: outside
    os.symlink(str(outside), local / "abs_out")
    os.symlink(str(outside / "secret"), local / "abs_secret")
    os.symlink(str(root / "t" / "local" / "hello.txt"), local / "abs_in")
    os.symlink("hello.txt", local / "rel_in")
    os.symlink("loop", local / "loop")
    os.symlink("../../../outside/secret", root / "alloc" / "logs" / "t.stdout.0")
    return root


ESCAPING = [
    "..",
    "../outside/secret",
    "/../../outside/secret",
    "t/local/to_root",
    "t/local/to_root/etc/passwd",
    "t/local/shadow",
    "t/local/up3",
    "t/local/up2/../outside/secret",
    "t/local/up2/..",
    "t/local/abs_out",
    "t/local/abs_out/secret",
    "t/local/abs_secret",
    "alloc/logs/t.stdout.0",
]


@pytest.mark.parametrize("path", ESCAPING)
def test_paths_leaving_the_alloc_dir_are_refused_by_every_operation(alloc: Path, path: str) -> None:
    for op in (
        lambda: allocfs.file_info(str(alloc), path),
        lambda: allocfs.list_dir(str(alloc), path),
        lambda: allocfs.read_at(str(alloc), path, 0, -1),
        lambda: allocfs.size_of(str(alloc), path),
    ):
        with pytest.raises(ValidationError, match="escapes"):
            op()


def test_links_that_stay_inside_work(alloc: Path) -> None:
    root = str(alloc)
    assert allocfs.read_at(root, "t/local/rel_in", 0, -1) == b"hello"
    assert allocfs.read_at(root, "t/local/abs_in", 0, -1) == b"hello"
    assert allocfs.read_at(root, "/t/local/up2/t/local/hello.txt", 1, 3) == b"ell"
    assert {i.name for i in allocfs.list_dir(root, "t/local/up2")} == {"alloc", "t"}
    assert {i.name for i in allocfs.list_dir(root, "/")} == {"alloc", "t"}  # .executor hidden
    info = allocfs.file_info(root, "t/local/hello.txt")
    assert (info.name, info.size, info.is_dir, info.file_mode[0]) == ("hello.txt", 5, False, "-")
    listed = {i.name: i for i in allocfs.list_dir(root, "t/local")}
    assert listed["shadow"].file_mode.startswith("l")  # listed as a link, never followed


def test_bad_paths_are_clear_errors(alloc: Path) -> None:
    root = str(alloc)
    with pytest.raises(NotFoundError):
        allocfs.file_info(root, "nope")
    with pytest.raises(NotFoundError):
        allocfs.file_info(root, ".executor")
    with pytest.raises(ValidationError, match="symbolic links"):
        allocfs.file_info(root, "t/local/loop")
    with pytest.raises(ValidationError, match="NUL"):
        allocfs.file_info(root, "a\0b")
    with pytest.raises(ValidationError, match="directory"):
        allocfs.read_at(root, "t", 0, -1)
    with pytest.raises(NotFoundError):
        allocfs.file_info(root, "t/local/hello.txt/x")
    with pytest.raises(ValidationError, match="File name too long"):
        allocfs.file_info(root, "x" * 300)
    with pytest.raises(ValidationError, match="longer than"):
        allocfs.list_dir(root, "a/" * 3000)
    with pytest.raises(ValidationError, match="not a directory"):
        allocfs.list_dir(root, "t/local/hello.txt")


def _logs(alloc: Path, logs: str) -> bytes:
    async def main() -> bytes:
        return b"".join([c async for c in stream_logs(logs, "t.stdout", root=str(alloc))])

    return asyncio.run(main())


def test_logs_do_not_follow_a_log_file_linked_outside(alloc: Path) -> None:
    logs = str(alloc / "alloc" / "logs")
    (alloc / "alloc" / "logs" / "t.stdout.1").write_text("mine\n")
    assert _logs(alloc, logs) == b"mine\n"  # the link (t.stdout.0) is skipped
    # the logs directory itself replaced by a link outside: nothing is read either
    os.rename(logs, logs + ".old")
    os.symlink(str(alloc.parent.parent / "outside"), logs)
    os.symlink("secret", alloc.parent.parent / "outside" / "t.stdout.0")
    assert _logs(alloc, logs) == b""

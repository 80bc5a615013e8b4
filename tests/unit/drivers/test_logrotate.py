from __future__ import annotations

from pathlib import Path

from nomadd.drivers.logrotate import FileRotator, log_files


def test_rotates_and_keeps_max_files(tmp_path: Path) -> None:
    r = FileRotator(str(tmp_path), "web.stdout", max_files=3, max_bytes=10)
    r.write(b"0123456789" * 5 + b"xy")
    r.close()
    files = log_files(str(tmp_path), "web.stdout")
    assert [i for i, _ in files] == [3, 4, 5]
    assert (tmp_path / "web.stdout.5").read_bytes() == b"xy"
    assert all((tmp_path / f"web.stdout.{i}").stat().st_size == 10 for i in (3, 4))


def test_continues_highest_index(tmp_path: Path) -> None:
    (tmp_path / "web.stderr.0").write_bytes(b"old")
    (tmp_path / "web.stderr.2").write_bytes(b"abc")
    (tmp_path / "web.stderr.10").write_bytes(b"")  # 10 sorts numerically, not as text
    (tmp_path / "web.stderr.x").write_bytes(b"ignored")
    r = FileRotator(str(tmp_path), "web.stderr", max_files=10, max_bytes=4)
    assert r.index == 10
    r.write(b"12345")
    r.close()
    assert (tmp_path / "web.stderr.10").read_bytes() == b"1234"
    assert (tmp_path / "web.stderr.11").read_bytes() == b"5"


def test_appends_to_partial_file(tmp_path: Path) -> None:
    (tmp_path / "t.stdout.0").write_bytes(b"ab")
    r = FileRotator(str(tmp_path), "t.stdout", max_files=2, max_bytes=4)
    r.write(b"cdef")
    r.close()
    assert (tmp_path / "t.stdout.0").read_bytes() == b"abcd"
    assert (tmp_path / "t.stdout.1").read_bytes() == b"ef"

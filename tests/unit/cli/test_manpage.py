"""nomadd(1) is generated from the command table: every command is on the page and groff, in
its strictest warning mode, finds nothing to say about it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nomadd import __version__
from nomadd.cli.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[3]


def _page() -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_man.py")], check=True, capture_output=True, text=True
    )
    return out.stdout


def test_every_command_is_on_the_page() -> None:
    page = _page()
    assert f'"nomadd {__version__}"' in page
    assert "@" not in page.split("\n", 1)[0]  # the .TH line's placeholders were filled
    for name in COMMANDS:
        assert f'.B "{name.replace("-", chr(92) + "-")}"' in page, name


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff (man-db) is not installed")
def test_groff_finds_nothing_to_warn_about(tmp_path: Path) -> None:
    src = tmp_path / "nomadd.1"
    src.write_text(_page())
    res = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(src)], capture_output=True, text=True)
    assert res.returncode == 0 and res.stderr == "", res.stderr

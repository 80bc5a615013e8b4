"""nomadd.api is the SDK: it must import nothing else from nomadd (docs/architecture.md §Layering; import-linter checks it too)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_api_imports_nothing_else_from_nomadd() -> None:
    code = (
        "import sys, importlib, pkgutil, nomadd.api\n"
        "for m in pkgutil.iter_modules(nomadd.api.__path__): importlib.import_module('nomadd.api.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.startswith('nomadd.') and not n.startswith('nomadd.api'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_cli_commands_do_not_import_the_agent() -> None:
    """A plain CLI command must stay light: no agent, aiohttp or pysyncobj imports."""
    code = (
        "import sys, nomadd.cli, nomadd.cli.version, nomadd.cli.agent_info\n"
        "heavy = [m for m in ('nomadd.agent', 'aiohttp', 'pysyncobj') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""

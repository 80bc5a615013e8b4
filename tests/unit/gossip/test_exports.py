"""The gossip package stays standalone and its public names exist."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nomadd.gossip

PACKAGE_DIR = Path(nomadd.gossip.__file__).parent
ALLOWED_THIRD_PARTY = {"msgpack", "cryptography"}
ALLOWED_NOMADD = {"nomadd.structs.errors", "nomadd.helper.supervisor"}  # both import only the stdlib


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_stdlib_msgpack_cryptography_and_errors_are_imported() -> None:
    sources = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(sources) >= 5
    for path in sources:
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("nomadd.gossip") or name in ALLOWED_NOMADD:
                continue
            assert top != "nomadd", f"{path.name} imports {name}"
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY or top == "__future__", (
                f"{path.name} imports {name}"
            )


def test_public_names_exist() -> None:
    for name in nomadd.gossip.__all__:
        assert hasattr(nomadd.gossip, name), name
    assert {"Gossip", "GossipConfig", "Member", "MemberEvent", "MemberStatus"} <= set(nomadd.gossip.__all__)

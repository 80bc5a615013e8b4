"""Every name in a structs module's ``__all__`` exists, and every public class is exported."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import nomadd.structs

MODULES = sorted(f"nomadd.structs.{m.name}" for m in pkgutil.iter_modules(nomadd.structs.__path__))


def test_modules_found() -> None:
    assert "nomadd.structs.errors" in MODULES
    assert "nomadd.structs.codec" in MODULES


@pytest.mark.parametrize("name", ["nomadd.structs", *MODULES])
def test_all_names_exist_and_are_unique(name: str) -> None:
    mod = importlib.import_module(name)
    exported = mod.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    missing = [n for n in exported if not hasattr(mod, n)]
    assert not missing


@pytest.mark.parametrize("name", MODULES)
def test_public_classes_and_functions_are_exported(name: str) -> None:
    mod = importlib.import_module(name)
    defined = {
        n
        for n, obj in vars(mod).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == name
    }
    assert defined <= set(mod.__all__), sorted(defined - set(mod.__all__))


def test_package_reexports_structs() -> None:
    from nomadd.structs import alloc, eval, job, node, plan

    for mod in (alloc, eval, job, node, plan):
        for n in mod.__all__:
            if inspect.isclass(getattr(mod, n)):
                assert getattr(nomadd.structs, n) is getattr(mod, n), n

"""The package's layers: every module imports only from layers below its own.

The order is the way a frame travels (see ``rrtn_plugin/__init__.py``); packages of one rank
(``client`` and ``server``) may not import each other, and the client side, which hosts load in
their own Python, imports nothing that needs torch or OpenImageIO.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rrtn_plugin"

LAYERS: list[set[str]] = [
    {"errors", "atomic", "lazy"},
    {"progress", "options"},
    {"model"},
    {"weights", "engine"},
    {"color"},
    {"frames"},
    {"synth"},
    {"training"},
    {"protocol"},
    {"client", "server"},
    {"farm"},
    {"cli"},
]
CLIENT_MAY_IMPORT = {"errors", "atomic", "progress", "options", "protocol", "client"}


def rank(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    raise AssertionError(f"rrtn_plugin.{part} is in no layer: add it to LAYERS")


def imports(path: Path) -> list[str]:
    """The ``rrtn_plugin`` parts (first component after the package) a module imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "rrtn_plugin":
                names += [f"rrtn_plugin.{alias.name}" for alias in node.names]
            else:
                names.append(node.module)
    return [
        n.split(".")[1]
        for n in names
        if n.startswith("rrtn_plugin.") and n.split(".")[1] != "__version__"
    ]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "protocol/rrtn" not in p.as_posix())


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_import_runs_back_up(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1 and relative.name == "__init__.py":
        return
    own = relative.parts[0].removesuffix(".py")
    upward = [p for p in imports(path) if p != own and rank(p) >= rank(own)]
    assert not upward, f"{relative} imports rrtn_plugin.{upward[0]}, a layer above or beside it"
    if own == "client":
        outside = set(imports(path)) - CLIENT_MAY_IMPORT
        assert not outside, f"{relative} imports rrtn_plugin.{sorted(outside)[0]}"


def test_every_package_says_what_it_owns() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        words = len((doc or "").split())
        assert words >= 15, f"{init.parent.name}/__init__.py needs a docstring saying what it owns"

"""``rrtn-plugin --help`` and every command's ``--help`` answer without loading torch or
OpenImageIO: the parsers are made from torch-free modules, and the packages they take their
choices from (``color``, ``model``, ``weights``) load the heavy parts on first use."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "OpenImageIO")

SCRIPT = """
import argparse, contextlib, io, json, sys
from rrtn_plugin.cli import main
from rrtn_plugin.cli.main import build_parser

def commands(parser, prefix):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, [*prefix, name])

shown = {}
for command in commands(build_parser(), []):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*command, "--help"])
        except SystemExit as exc:
            assert exc.code == 0, (command, exc.code)
    assert "usage: rrtn-plugin" in out.getvalue(), command
    shown[" ".join(command)] = [m for m in HEAVY if m in sys.modules]
print(json.dumps(shown))
"""


def test_help_of_every_command_loads_neither_torch_nor_openimageio() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{SCRIPT}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    shown = json.loads(ran.stdout)
    assert {"", "restore", "farm openjd", "serve", "train"} <= set(shown)
    assert all(loaded == [] for loaded in shown.values()), shown


@pytest.mark.parametrize("package", ["rrtn_plugin.color", "rrtn_plugin.model"])
def test_packages_loading_on_first_use_still_export_all_they_name(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018

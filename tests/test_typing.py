"""mypy --strict over the whole ``rrtn_plugin`` package and the host adapters, the adapters
checked against their hosts' stubs (types-nuke, fake-bpy-module, fusionscript-stubs); the files
and the per-module settings are pyproject.toml's [tool.mypy]."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^Success: no issues found in \d+ source files$", done.stdout, re.M), (
        done.stdout
    )

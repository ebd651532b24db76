"""The one cancellation check and progress event every layer shares (rrtn_plugin.progress)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.progress import Progress, check_cancel


def test_check_cancel_raises_cancelled_only_when_asked_to_stop() -> None:
    check_cancel(None)
    check_cancel(lambda: False)
    with pytest.raises(RRTNError, match="restore cancelled") as info:
        check_cancel(lambda: True)
    assert info.value.kind is ErrorKind.CANCELLED


def test_check_cancel_asks_each_time() -> None:
    answers = iter([False, False, True])
    check_cancel(lambda: next(answers))
    check_cancel(lambda: next(answers))
    with pytest.raises(RRTNError):
        check_cancel(lambda: next(answers))


def test_progress_needs_no_frame_and_loads_without_torch() -> None:
    assert Progress(1, "restore", 2, 5) == Progress(1, "restore", 2, 5, None)
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from rrtn_plugin.progress import Progress, check_cancel\n"
        "print(Progress(0, 'write', 1, 2, frame=7).frame)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "7"

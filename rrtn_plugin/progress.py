"""Long work reporting how far it got, and stopping when asked: :class:`Progress` events and
:func:`check_cancel`.

Both ends use them: the engine, jobs and the server report :class:`Progress` and stop at
:func:`check_cancel`; the client library hands the server's progress to hosts as the same
:class:`Progress`. Nothing here needs torch, so hosts can load it in their own Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rrtn_plugin.errors import ErrorKind, RRTNError


@dataclass(frozen=True)
class Progress:
    """One step of work.

    ``stage`` is "flow" (RAFT pairs of this pass: ``done`` of ``total``), "restore" (windows of
    this pass), or "read"/"write" (frames, ``pass_number`` 0). ``frame`` is the frame the step
    is about, when there is one.
    """

    pass_number: int
    stage: str
    done: int
    total: int
    frame: int | None = None


def check_cancel(should_stop: Callable[[], bool] | None) -> None:
    """Raise RRTNError(kind CANCELLED) if ``should_stop`` says to stop; None never stops.

    Long work calls it between steps, so a cancelled job stops at the next one.
    """
    if should_stop is not None and should_stop():
        raise RRTNError("restore cancelled", kind=ErrorKind.CANCELLED)

"""Progress on the terminal: :class:`ProgressPrinter`, the callback commands hand the core."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rrtn_plugin.progress import Progress


class ProgressPrinter:
    """A one-line progress bar on a terminal; otherwise plain log lines, one when a stage
    starts or ends and at most one a second in between."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.label = ""

    def __call__(self, event: Progress) -> None:
        label = f"pass {event.pass_number} {event.stage}" if event.pass_number else event.stage
        finished = event.done >= event.total
        if self.tty:
            filled = 30 * event.done // max(event.total, 1)
            self.stream.write(
                f"\r{label:<16} [{'#' * filled}{'.' * (30 - filled)}] "
                f"{event.done}/{event.total}" + ("\n" if finished else "")
            )
            self.stream.flush()
        elif finished or label != self.label or time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            print(f"{label} {event.done}/{event.total}", file=self.stream, flush=True)
        self.label = label

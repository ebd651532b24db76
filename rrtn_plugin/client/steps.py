"""A long host run split into steps, so that a host's UI loop stays live while it runs.

A host's scripting API often has no threads of its own (Resolve's UIManager): its UI calls
:meth:`Steps.advance` from a timer, a Cancel button calls :meth:`Steps.cancel`, closing the
window :meth:`Steps.finish`; a terminal calls :meth:`Steps.run` (Ctrl-C cancels).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rrtn_plugin.errors import ErrorKind, RRTNError


class Steps:
    """``make(cancelled)`` returns a generator that yields a progress line after each step,
    checks ``cancelled()`` between steps, and returns its result. However the steps end,
    the generator's ``finally`` blocks put the host's settings back."""

    def __init__(self, make: Callable[[Callable[[], bool]], Iterator[str]]) -> None:
        self._cancel = threading.Event()
        self._steps = make(self._cancel.is_set)
        self.text = "Starting"
        self.done = False
        self.result: Any = None
        self.error: RRTNError | None = None

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def advance(self) -> bool:
        """Do one step; returns whether steps remain. A failure ends the run (:attr:`error`)."""
        if self.done:
            return False
        try:
            self.text = next(self._steps)
        except StopIteration as stop:
            self.done, self.result = True, stop.value
        except RRTNError as exc:
            self.done, self.error, self.text = True, exc, f"Error: {exc}"
        except Exception as exc:  # shown to the user like the others
            self.error = RRTNError(f"{type(exc).__name__}: {exc}")
            self.done, self.text = True, f"Error: {self.error}"
        return not self.done

    def finish(self) -> None:
        """Cancel and run what remains at once (the window is closing): the host's settings
        are put back before it goes."""
        self.cancel()
        while self.advance():
            pass

    def run(self, progress: Callable[[str], None] = print, interval: float = 0.5) -> Any:
        """Drive every step from a terminal; returns the result or raises the error."""
        while not self.done:
            try:
                if self.advance():
                    progress(self.text)
                    time.sleep(interval)
            except KeyboardInterrupt:  # in a sleep the steps see it; in a step it ended them
                self.cancel()
        if self.error is None and self.cancelled and self.result is None:
            self.error = RRTNError("cancelled", kind=ErrorKind.CANCELLED)
        if self.error is not None:
            raise self.error
        return self.result

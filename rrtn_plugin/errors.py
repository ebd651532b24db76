"""The project's one exception type, and the kinds of failure it reports.

Every failure a user can act on (a bad file, a bad option, too little memory, a cancelled job)
is raised as :class:`RRTNError` with a message that names the file, frame or option involved.
The ``kind`` lets front ends (the CLI's exit code, the gRPC status) react without parsing text.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """What went wrong, coarsely: one value per way a caller can react."""

    INVALID_INPUT = "invalid input"
    """A file, frame, tensor or option is not acceptable; the message says which and why."""
    NOT_FOUND = "not found"
    """A named file, frame or session does not exist."""
    OUT_OF_MEMORY = "out of memory"
    """The work does not fit the device or the memory budget; the message gives advice."""
    CANCELLED = "cancelled"
    """The caller asked to stop."""
    PERMISSION_DENIED = "permission denied"
    """A path lies outside what the server may read or write."""


class RRTNError(Exception):
    """A failure with a message meant for the user, and its :class:`ErrorKind`."""

    def __init__(self, message: str, *, kind: ErrorKind = ErrorKind.INVALID_INPUT) -> None:
        super().__init__(message)
        self.kind = kind

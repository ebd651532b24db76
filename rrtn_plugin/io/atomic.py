"""Atomic file output: write to a temporary file beside the target, then rename over it.

A crash or a kill mid-write leaves either the old file or no file, never a partial one; the
temporary name starts with a dot and ends in ``.tmp`` so sequence readers do not pick it up.
The finished file gets the permissions of a normally created one (0666 less the umask), not the
owner-only ones of a temporary file, so a farm's other users can read the frames.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once, at import (changing the umask is not thread-safe)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``path``, else removed.

    The suffix of ``path`` is kept on the temporary file so writers that choose the format by
    extension still work.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f"{target.suffix}.tmp",
                               dir=target.parent)
    os.close(fd)
    temporary = Path(tmp)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)

"""Atomic file output: write to a temporary file beside the target, then rename over it.

A crash or a kill mid-write leaves either the old file or no file, never a partial one; the
temporary name starts with a dot and ends in ``.tmp`` so sequence readers do not pick it up, and
names the machine and process writing it, so :func:`remove_stale_temporaries` can clear those
a killed process left behind (a farm task's retry does).
The finished file gets the permissions of a normally created one (0666 less the umask), not the
owner-only ones of a temporary file, so a farm's other users can read the frames.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once, at import (changing the umask is not thread-safe)
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()
_OWNER = re.compile(r"\.([0-9a-f]{8})-(\d+)\.")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``path``, else removed.

    The suffix of ``path`` is kept on the temporary file so writers that choose the format by
    extension still work.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.stem}.{_HOST}-{os.getpid()}.",
        suffix=f"{target.suffix}.tmp",
        dir=target.parent,
    )
    os.close(fd)
    temporary = Path(tmp)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files in ``folder`` that writers on this machine left when they
    were killed (their process is gone); returns them. Others' are left alone: a live
    process's, another machine's (it cannot be asked), and any on Windows."""
    if sys.platform == "win32":
        return []
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        owner = _OWNER.search(path.name)
        if owner is None or owner.group(1) != _HOST or _alive(int(owner.group(2))):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True

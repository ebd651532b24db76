"""The path transport's confinement: every file it reads or writes lies under a ``--root``.

A path a request names is checked as text first (length, NUL bytes, over-long names), then
resolved in full (every symlink, the last component included) and refused unless it lies under
one of the roots. Resolving alone would leave a window between the check and the use, in which
a folder or frame could be swapped for a symlink to elsewhere; so the resolved path is then
opened component by component from the root's own descriptor, never following a symlink
(``O_NOFOLLOW``), and the files are read and written through those descriptors (on Linux as
``/proc/self/fd/N``, which OpenImageIO opens like any path). A frame file that is a symlink is
followed only when its target, resolved the same way, lies under a root too.

Errors are RRTNErrors: PERMISSION_DENIED for a path outside the roots, INVALID_INPUT for a
malformed one, NOT_FOUND for a missing one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from rrtn_plugin.errors import ErrorKind, RRTNError

MAX_PATH_CHARS = 4096
"""The longest path a request may name (Linux's PATH_MAX)."""
MAX_NAME_BYTES = 255
"""The longest name of one folder or file (NAME_MAX on common file systems)."""

_PROC_FD = Path("/proc/self/fd")
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
"""A frame file: read only, never through a symlink, and without waiting on a FIFO."""


def shown(text: str, limit: int = 80) -> str:
    """``text`` for a message: at most ``limit`` characters, the rest counted, not echoed."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def check_path_text(text: str, what: str) -> None:
    """RRTNError (INVALID_INPUT) unless ``text`` can name a file: not empty, no NUL byte, at
    most :data:`MAX_PATH_CHARS` characters, no name longer than :data:`MAX_NAME_BYTES` bytes."""
    if not text:
        raise RRTNError(f"{what} is empty")
    if len(text) > MAX_PATH_CHARS:
        raise RRTNError(f"{what} is {len(text)} characters long (at most {MAX_PATH_CHARS})")
    if "\0" in text:
        raise RRTNError(f"{what} {shown(text)} holds a NUL byte")
    for part in Path(text).parts:
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise RRTNError(
                f"{what} has a name of {len(os.fsencode(part))} bytes ({shown(part, 40)}); "
                f"names are at most {MAX_NAME_BYTES}"
            )


class Roots:
    """The folders the path transport may use, resolved once, when the server starts."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = tuple(Path(os.path.realpath(r)) for r in roots)

    def __bool__(self) -> bool:
        return bool(self.roots)

    def describe(self) -> str:
        return ", ".join(map(str, self.roots))

    def resolve(self, text: str, what: str) -> tuple[Path, Path]:
        """(root, resolved path) of ``text``, checked to lie under a root.

        Raises:
            RRTNError: no roots, a malformed path, or one that resolves outside every root.
        """
        if not self.roots:
            raise RRTNError(
                "this server does not read or write files (start it with --root)",
                kind=ErrorKind.PERMISSION_DENIED,
            )
        check_path_text(text, what)
        if not os.path.isabs(text):
            raise RRTNError(f"{what} {shown(text)} is not an absolute path")
        try:
            real = Path(os.path.realpath(text))
        except (OSError, ValueError) as exc:
            raise RRTNError(f"{what} {shown(text)} cannot be resolved: {exc}") from None
        for root in self.roots:
            if real == root or real.is_relative_to(root):
                return root, real
        raise RRTNError(
            f"{what} {shown(text)} is outside the folders this server may use ({self.describe()})",
            kind=ErrorKind.PERMISSION_DENIED,
        )

    def open(self, text: str, what: str, *, folder: bool, create: bool = False) -> int:
        """A descriptor of the file or folder ``text`` names, opened from its root without
        following any symlink (see the module's description); the caller closes it.

        Args:
            folder: open a folder (else a regular file, read only).
            create: make missing folders (mode 0777 less the umask).
        """
        root, real = self.resolve(text, what)
        parts = real.relative_to(root).parts
        fd = os.open(root, _DIRECTORY)
        try:
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                flags = _FILE if last and not folder else _DIRECTORY | _NOFOLLOW
                opened = _step(fd, part, flags, create=create and (folder or not last), text=text)
                os.close(fd)
                fd = opened
            if not folder and stat.S_ISDIR(os.fstat(fd).st_mode):
                raise RRTNError(f"{what} {shown(text)} is a folder, not a file")
            if not folder and not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RRTNError(f"{what} {shown(text)} is not a regular file")
            return fd
        except BaseException:
            os.close(fd)
            raise

    def check_writable(self, text: str, what: str) -> None:
        """RRTNError unless the folder ``text`` exists and may be written to, or can be made:
        its nearest existing folder is a folder (not a file) the server may write in."""
        _, real = self.resolve(text, what)
        existing = real
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise RRTNError(
                f"{what} {shown(text)} cannot be made: {shown(str(existing))} is a file"
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            raise RRTNError(
                f"{what} {shown(text)}: this server may not write in {shown(str(existing))}",
                kind=ErrorKind.PERMISSION_DENIED,
            )

    @contextlib.contextmanager
    def folder(self, text: str, what: str, *, create: bool = False) -> Iterator[ConfinedFolder]:
        """The folder ``text``, opened (see :meth:`open`) for as long as the context lasts."""
        _, real = self.resolve(text, what)
        fd = self.open(text, what, folder=True, create=create)
        try:
            yield ConfinedFolder(self, fd, real, what)
        finally:
            os.close(fd)


class ConfinedFolder:
    """An opened folder under a root: its files are reached through its descriptor.

    Attributes:
        path: the path to hand to readers and writers (``/proc/self/fd/N`` on Linux, else the
            resolved path).
        real: the folder's resolved path, for messages and replies.
    """

    def __init__(self, roots: Roots, fd: int, real: Path, what: str) -> None:
        self.roots, self.fd, self.real, self.what = roots, fd, real, what
        self.path = _PROC_FD / str(fd) if _PROC_FD.is_dir() else real

    def real_path(self, path: Path) -> Path:
        """``path`` (under :attr:`path`) as the file's real path, for replies."""
        try:
            return self.real / Path(path).relative_to(self.path)
        except ValueError:
            return Path(path)

    @contextlib.contextmanager
    def open_file(self, name: str) -> Iterator[Path]:
        """A readable path of the file ``name`` in this folder, opened without following a
        symlink; a symlink is followed only to a file under a root.

        Raises:
            RRTNError: missing (NOT_FOUND), outside the roots, not a regular file.
        """
        check_path_text(name, "a frame's name")
        try:
            fd = os.open(name, _FILE, dir_fd=self.fd)
        except FileNotFoundError:
            raise RRTNError(
                f"missing frame: {self.real / name}", kind=ErrorKind.NOT_FOUND
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.EMLINK):
                raise RRTNError(f"cannot open {self.real / name}: {exc.strerror}") from None
            fd = self.roots.open(str(self.real / name), "a frame", folder=False)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RRTNError(f"{self.real / name} is not a regular file")
            yield _PROC_FD / str(fd) if _PROC_FD.is_dir() else self.real / name
        finally:
            os.close(fd)


def _step(fd: int, part: str, flags: int, *, create: bool, text: str) -> int:
    """Open ``part`` in the folder ``fd`` with ``flags``; the new descriptor."""
    try:
        try:
            return os.open(part, flags, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise RRTNError(f"{shown(text)} does not exist", kind=ErrorKind.NOT_FOUND) from None
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            return os.open(part, flags, dir_fd=fd)
    except NotADirectoryError:
        raise RRTNError(f"{shown(text)}: {shown(part)} is a file, not a folder") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise RRTNError(
                f"{shown(text)} changed into a symlink while it was being opened",
                kind=ErrorKind.PERMISSION_DENIED,
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise RRTNError(
                f"{shown(text)}: this server may not open {shown(part)}",
                kind=ErrorKind.PERMISSION_DENIED,
            ) from None
        raise RRTNError(f"{shown(text)}: cannot open {shown(part)}: {exc.strerror}") from None

"""Frame sequences named the VFX way: ``shot.####.exr``, ``shot.%04d.exr``, ``shot.@@@@.dpx``.

One ``#`` or ``@`` is one digit (Nuke's convention; ``####`` is four digits), ``%04d`` is printf
style; a range may be embedded (``shot.1001-1100#.exr``). A folder that holds exactly one
sequence may be named instead of a pattern. Frame ranges use the same syntax as the command line
of most VFX tools: ``1001-1100``, ``1001-1100x2``, ``1001,1003``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import fileseq

from rrtn_plugin.errors import ErrorKind, RRTNError

_PAD = fileseq.PAD_STYLE_HASH1


def parse_frames(text: str) -> list[int]:
    """Frame numbers of a range like ``1001-1100``; RRTNError if it is not one."""
    try:
        values = list(fileseq.FrameSet(text.strip()))
    except (fileseq.ParseException, ValueError) as exc:
        raise RRTNError(f"bad frame range '{text}' (expected e.g. 1001-1100)") from exc
    if not values:
        raise RRTNError(f"frame range '{text}' is empty")
    if any(v != int(v) for v in values):
        raise RRTNError(f"frame range '{text}' has subframes: give whole frame numbers")
    return [int(v) for v in values]


@dataclass(frozen=True)
class FramePattern:
    """Where each frame of a sequence lives: ``pattern.path(1001)`` → ``…/shot.1001.exr``."""

    directory: str
    basename: str
    padding: int
    extension: str
    frames_in_name: tuple[int, ...] = ()
    """Frames the pattern itself named (``shot.1001-1010#.exr``), else empty."""

    def path(self, frame: int) -> Path:
        digits = f"{frame:0{self.padding}d}" if frame >= 0 else f"-{-frame:0{self.padding}d}"
        return Path(self.directory) / f"{self.basename}{digits}{self.extension}"

    @property
    def format(self) -> str:
        """The file extension without the dot, lower case (``exr``, ``dpx``)."""
        return self.extension.lstrip(".").lower()

    def display(self) -> str:
        """The pattern as printf-style text, for messages."""
        return str(Path(self.directory) / f"{self.basename}%0{self.padding}d{self.extension}")

    def with_suffix(self, tag: str, extension: str) -> FramePattern:
        """A side-car pattern: ``shot.####.dpx`` → ``shot_<tag>.####.<extension>``."""
        stem = self.basename.rstrip("._")
        separator = self.basename[len(stem) :] or "."
        return FramePattern(
            self.directory, f"{stem}_{tag}{separator}", self.padding, f".{extension}"
        )

    def frames_on_disk(self) -> list[int]:
        """Frames of this pattern that exist, in order."""
        try:
            found = fileseq.findSequenceOnDisk(self.display(), pad_style=_PAD)
        except fileseq.FileSeqException:
            return []
        return sorted(int(f) for f in found.frameSet() or ())


def parse_pattern(spec: str | os.PathLike[str], *, must_exist: bool = False) -> FramePattern:
    """A :class:`FramePattern` from a pattern, a file of a sequence, or a folder of one.

    Raises:
        RRTNError: the text names no frame number, or a folder holds zero or several sequences.
    """
    text = os.fspath(spec)
    if Path(text).is_dir():
        found = fileseq.findSequencesOnDisk(text, pad_style=_PAD)
        sequences = [s for s in found if s.frameSet()]
        if len(sequences) != 1:
            names = ", ".join(str(s) for s in sequences[:4]) or "none"
            raise RRTNError(
                f"folder {text} must hold exactly one image sequence, found {names}",
                kind=ErrorKind.NOT_FOUND if not sequences else ErrorKind.INVALID_INPUT,
            )
        sequence = sequences[0]
    else:
        try:
            sequence = fileseq.FileSequence(text, pad_style=_PAD)
        except fileseq.ParseException as exc:
            raise RRTNError(f"'{text}' is not a frame sequence pattern: {exc}") from exc
    if not sequence.padding() and sequence.frameSet() is None:
        raise RRTNError(
            f"'{text}' has no frame number: use a pattern like shot.####.exr or shot.%04d.exr"
        )
    frames = tuple(int(f) for f in sequence.frameSet() or ())
    pattern = FramePattern(
        sequence.dirname() or ".",
        sequence.basename(),
        max(sequence.zfill(), 1),
        sequence.extension(),
        frames,
    )
    if must_exist and not Path(pattern.directory).is_dir():
        raise RRTNError(f"folder {pattern.directory} does not exist", kind=ErrorKind.NOT_FOUND)
    return pattern

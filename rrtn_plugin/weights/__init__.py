"""The bundled default model: a small RRTN trained here on CPU (see README, "The bundled model").

One checkpoint in our safetensors format, the first-pass network; later passes reuse it. It
pairs the restorer with OpenCV's DIS optical flow, recorded in its metadata, because RAFT's
trained weights cannot be bundled; the authors' checkpoints keep RAFT and are what to use for
the paper's quality. Torch loads with the network (:func:`load_bundled`), not with the
package, so that :data:`PASSES` can be shown (``rrtn-plugin --help``) without it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rrtn_plugin.errors import ErrorKind, RRTNError

if TYPE_CHECKING:
    import torch

    from rrtn_plugin.model import RRTN

FIRST = "rrtn_small_first.safetensors"
PASSES = 1
"""Passes to run the bundled model unless asked (it has no second-pass network): running the
earlier bundled model again as its own second pass lowered the held-out PSNR by 2 dB, and a
second-pass network trained for it (800 steps on 12-frame clips) gained on one real film and
lost as much on the other once the tone guard had run, at twice the time (README)."""


def bundled_path() -> Path:
    """Path of the bundled checkpoint file."""
    path = Path(str(resources.files(__name__) / FIRST))
    if not path.is_file():
        raise RRTNError(
            f"bundled checkpoint {FIRST} is missing from {path.parent}; reinstall "
            "rrtn-plugin or pass --model",
            kind=ErrorKind.NOT_FOUND,
        )
    return path


def load_bundled(device: str | torch.device = "cpu") -> tuple[RRTN, RRTN | None]:
    """The bundled (first-pass, second-pass) networks; there is no second-pass network yet."""
    from rrtn_plugin.model import load_rrtn

    return load_rrtn(bundled_path(), device), None

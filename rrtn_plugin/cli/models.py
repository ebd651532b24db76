"""The networks a command restores with, and the pass count that goes with them.

``--model`` names a checkpoint, or a folder holding the authors' pair; ``--model-second`` a
checkpoint for passes 2 and later; without ``--model`` the bundled small model is used, and
commands run its own pass count unless given ``--max-passes``. Torch loads with the models
(:func:`load_models`), not with the arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.weights import PASSES as BUNDLED_PASSES
from rrtn_plugin.weights import load_bundled

if TYPE_CHECKING:
    from rrtn_plugin.model import RRTN

OFFICIAL_NAMES = ("rrtn_128_first.pth", "rrtn_128_second.pth")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        help="checkpoint for all passes, or a folder holding the authors' "
        f"{' and '.join(OFFICIAL_NAMES)} (default: the bundled small model)",
    )
    parser.add_argument(
        "--model-second",
        type=Path,
        help="checkpoint for passes 2 and later (default: --model's, or the folder's second)",
    )


def load_models(model: Path | None, model_second: Path | None) -> tuple[RRTN, RRTN | None]:
    """``--model`` (a checkpoint, or a folder with the official pair) and ``--model-second``;
    without ``--model``, the bundled small model (for both passes unless ``--model-second``)."""
    from rrtn_plugin.model import load_rrtn

    if model is None:
        first, second = load_bundled()
        return first, load_rrtn(model_second) if model_second else second
    if model.is_dir():
        first_path, second_path = (model / name for name in OFFICIAL_NAMES)
        if not first_path.is_file():
            raise RRTNError(f"folder {model} has no {OFFICIAL_NAMES[0]}", kind=ErrorKind.NOT_FOUND)
        model_second = model_second or (second_path if second_path.is_file() else None)
        model = first_path
    return load_rrtn(model), (load_rrtn(model_second) if model_second else None)


def max_passes(args: argparse.Namespace, default: int) -> int:
    """``--max-passes``, else the bundled model's pass count when it is used, else ``default``."""
    if getattr(args, "max_passes", None) is not None:
        passes: int = args.max_passes
        return passes
    return BUNDLED_PASSES if args.model is None and args.model_second is None else default

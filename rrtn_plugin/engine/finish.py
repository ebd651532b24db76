"""The stages after the network, run on each shot's restored frames: the tone guard
(:mod:`.tone`), then the repair mode and strength (:mod:`.repair`).

The network's output is left as it is when the options turn both off (``tone_guard="off"``,
``repair_mode="full"``, ``repair_strength=1``), so the engine then gives the network's frames
bit for bit. Frames are the network's luminance, display-referred, in [0, 1].
"""

from __future__ import annotations

import torch

from rrtn_plugin.engine.repair import damage_mask, repair
from rrtn_plugin.engine.tone import ToneGuard, guard_tone
from rrtn_plugin.options import RestoreOptions


def tone_guard_of(options: RestoreOptions) -> ToneGuard | None:
    """The tone guard ``options`` ask for (None: off)."""
    if options.tone_guard == "off":
        return None
    return ToneGuard(deflicker=options.tone_guard == "deflicker")


def stages_on(options: RestoreOptions) -> bool:
    """Whether any stage changes the network's output under ``options``."""
    return (
        options.tone_guard != "off" or options.repair_mode != "full" or options.repair_strength != 1
    )


def finish(
    given: torch.Tensor,
    restored: torch.Tensor,
    noise_masks: torch.Tensor,
    *,
    options: RestoreOptions,
) -> torch.Tensor:
    """The frames a restore hands back for consecutive frames of one shot.

    Args:
        given: (T, H, W) the frames as given to the engine.
        restored: (T, H, W) the network's output for them (the last pass's).
        noise_masks: (T, H, W) their first-pass noise masks, frame-value units (the damage
            mask of the ``defects`` mode).
        options: ``tone_guard``, ``repair_mode`` and ``repair_strength``.

    Returns:
        (T, H, W): ``restored`` with its large-area tone held to ``given``'s, then blended into
        ``given`` by the repair mode; a pixel the repair leaves alone is ``given``'s, bit for
        bit. With every stage off, ``restored`` itself.
    """
    out = restored
    guard = tone_guard_of(options)
    if guard is not None:
        out = guard_tone(given, out, guard=guard)
    defects = options.repair_mode == "defects"
    return repair(
        given,
        out,
        mode=options.repair_mode,
        mask=damage_mask(noise_masks) if defects else None,
        strength=options.repair_strength,
    )

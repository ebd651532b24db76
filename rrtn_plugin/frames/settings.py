"""What a restore job does beyond the engine's scheduling (:class:`JobSettings`). Imports
nothing heavy (no torch), so that a front end can show the settings' defaults
(``rrtn-plugin --help``) before the engine is loaded; :mod:`.restore` runs jobs with them."""

from __future__ import annotations

from dataclasses import dataclass, field

from rrtn_plugin.color.modes import ColorMode
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.options import RestoreOptions


@dataclass(frozen=True)
class JobSettings:
    """What a restore job does beyond the engine's scheduling.

    Attributes:
        frames: frames to write (contiguous); None: every frame of the input on disk.
        handles: frames read on each side for context (clamped to what exists), not written.
        input_colorspace: the frames' colour space; None: the config's ``scene_linear`` role.
        working_colorspace: the network's space; None: sRGB-encoded Rec.709 from the config.
        ocio_config: OpenColorIO config path or URI; None: ``$OCIO`` or the built-in one.
        color_mode: keep chroma, or write the restored luminance as monochrome.
        aovs: which AOVs to write.
        restore: the engine's options.
        skip_existing: leave frames whose files are already complete (an earlier run's, as a
            farm retry finds them) and restore only the rest.
    """

    frames: list[int] | None = None
    handles: int = 0
    input_colorspace: str | None = None
    working_colorspace: str | None = None
    ocio_config: str | None = None
    color_mode: ColorMode = ColorMode.KEEP_CHROMA
    aovs: tuple[Aov, ...] = ()
    restore: RestoreOptions = field(default_factory=RestoreOptions)
    skip_existing: bool = False

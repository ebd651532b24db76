"""One frame's way to the network and back: colour, luminance, the change, AOVs, the file.

:class:`FramePipeline` is what jobs and the server share between files and the engine: it turns
a frame's pixels into the network's luminance, and the engine's result for that frame back into
an image with its AOVs, as a file on disk (written atomically) or as file bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rrtn_plugin.color import (
    ColorMode,
    Converter,
    FrameColor,
    apply_change,
    load_config,
    network_input,
)
from rrtn_plugin.color import working_colorspace as find_working_colorspace
from rrtn_plugin.frames.aovs import CHANNELS, Aov, aov_planes
from rrtn_plugin.frames.image import ImageInfo, read_pixels, write_image
from rrtn_plugin.frames.image_bytes import encode_image
from rrtn_plugin.frames.sequence import FramePattern

INTEGER_BITS = {"dpx": 10, "png": 16, "tif": 16, "tiff": 16}
EXR_COMPRESSIONS = {"none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab"}
"""Bits per sample written when the input's depth does not carry over to the output format."""


@dataclass
class FrameResult:
    """The engine's result for one frame: (H, W) restored luminance and mask, optional motion."""

    restored: torch.Tensor
    mask: torch.Tensor
    motion_forward: torch.Tensor | None = None
    motion_backward: torch.Tensor | None = None


@dataclass
class RenderedFrame:
    """A restored frame ready to write: its picture channels and its AOV channels."""

    info: ImageInfo
    pixels: np.ndarray
    aov_names: list[str]
    aov_planes: np.ndarray


class FramePipeline:
    """Colour handling and AOVs of one clip (all its frames share channels and settings).

    Args:
        channels: the frames' channel names.
        input_colorspace: their colour space (None: the config's ``scene_linear`` role).
        working_colorspace: the network's (None: sRGB-encoded Rec.709 from the config).
        ocio_config: OpenColorIO config path or URI (None: ``$OCIO`` or the built-in one).
        color_mode: keep chroma, or write the restored luminance as monochrome.
        aovs: AOVs to add to each frame.
    """

    def __init__(
        self,
        channels: Sequence[str],
        *,
        input_colorspace: str | None = None,
        working_colorspace: str | None = None,
        ocio_config: str | None = None,
        color_mode: ColorMode = ColorMode.KEEP_CHROMA,
        aovs: tuple[Aov, ...] = (),
    ) -> None:
        config = load_config(ocio_config)
        self.converter = Converter(
            config,
            source=input_colorspace or "scene_linear",
            working=find_working_colorspace(config, working_colorspace),
        )
        self.color = FrameColor.of(channels)
        self.color_mode = color_mode
        self.aovs = aovs

    def network_input(self, pixels: np.ndarray) -> tuple[torch.Tensor, bool]:
        """(H, W) luminance for the network, and whether the frame had NaN/Inf pixels."""
        luma, nonfinite = network_input(pixels, self.color, self.converter)
        return torch.from_numpy(luma), bool(nonfinite.any())

    def read_clip(self, pattern: FramePattern, numbers: Sequence[int]) -> torch.Tensor:
        """(T, H, W) network luminance of frames ``numbers`` of ``pattern``, clamped to [0, 1]
        (for training and measuring; NaN/Inf pixels come back filled)."""
        return torch.stack(
            [self.network_input(read_pixels(pattern.path(n))[1])[0] for n in numbers]
        ).clamp(0, 1)

    def render(self, info: ImageInfo, pixels: np.ndarray, result: FrameResult) -> RenderedFrame:
        """Apply the network's change to a frame and build its AOV planes."""
        restored, repair = apply_change(
            pixels, self.color, self.converter, result.restored.numpy(), mode=self.color_mode
        )
        names, planes = aov_planes(
            self.aovs,
            mask=result.mask.numpy(),
            repair=repair,
            forward=None if result.motion_forward is None else result.motion_forward.numpy(),
            backward=None if result.motion_backward is None else result.motion_backward.numpy(),
        )
        return RenderedFrame(info, restored, names, planes)

    def targets(self, out: FramePattern, number: int) -> list[Path]:
        """The files :meth:`write` writes for frame ``number``: the frame, and a side-car EXR
        for the AOVs when the format cannot hold them."""
        sidecar = out.format != "exr" and self.aovs
        return [out.path(number)] + ([self._sidecar(out).path(number)] if sidecar else [])

    @staticmethod
    def _sidecar(out: FramePattern) -> FramePattern:
        return out.with_suffix("rrtn_aovs", "exr")

    def write(self, frame: RenderedFrame, out: FramePattern, number: int) -> list[Path]:
        """Write a frame (atomically) to ``out``; AOVs in the EXR, or in a side-car EXR."""
        target = out.path(number)
        if out.format == "exr":
            pixels, layout = self._exr(frame)
            write_image(target, pixels, **layout)
            return [target]
        info = frame.info
        same_family = info.path.suffix.lower().lstrip(".") == out.format
        bits = (
            info.bits
            if same_family and info.format.startswith("uint")
            else INTEGER_BITS[out.format]
        )
        write_image(
            target,
            frame.pixels,
            channels=info.channels,
            template=info.spec,
            channel_formats=["uint8" if bits <= 8 else "uint16"] * len(info.channels),
            bits=bits,
        )
        if not frame.aov_names:
            return [target]
        sidecar = self._sidecar(out).path(number)
        write_image(
            sidecar,
            frame.aov_planes,
            channels=frame.aov_names,
            template=info.spec,
            channel_formats=["float"] * len(frame.aov_names),
            compression="zip",
        )
        return [target, sidecar]

    def encode_exr(self, frame: RenderedFrame, *, with_aovs: bool = True) -> bytes:
        """The frame as EXR file bytes, its AOVs as channels beside the picture's or not."""
        pixels, layout = self._exr(frame, with_aovs=with_aovs)
        return encode_image(pixels, **layout)

    def encode_aov_files(self, frame: RenderedFrame) -> dict[str, bytes]:
        """Each AOV of the frame as its own EXR's bytes, by AOV name ("mask", …).

        A one-channel AOV is written to R, G and B (a grey picture, as hosts take mattes);
        the motion AOV keeps its four named channels.
        """
        files: dict[str, bytes] = {}
        start = 0
        for aov in self.aovs:
            count = len(CHANNELS[aov])
            planes = frame.aov_planes[:, :, start : start + count]
            start += count
            channels = list(CHANNELS[aov]) if count > 1 else ["R", "G", "B"]
            if count == 1:
                planes = np.repeat(planes, 3, axis=2)
            files[aov.value] = encode_image(
                planes,
                channels=channels,
                template=frame.info.spec,
                channel_formats=["float"] * len(channels),
                compression="zip",
            )
        return files

    @staticmethod
    def _exr(frame: RenderedFrame, *, with_aovs: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
        """EXR pixels and write arguments: picture channels in their own (float) types, AOVs
        as float, the input's EXR compression, else zip."""
        info = frame.info
        formats = [str(f) for f in info.spec.channelformats] or [info.format] * len(info.channels)
        formats = [f if f in ("half", "float") else "float" for f in formats]
        compression = info.spec.get_string_attribute("compression").split(":")[0]
        aov_names = frame.aov_names if with_aovs else []
        planes = [frame.pixels, frame.aov_planes] if with_aovs else [frame.pixels]
        return np.concatenate(planes, axis=2), {
            "channels": list(info.channels) + aov_names,
            "template": info.spec,
            "channel_formats": formats + ["float"] * len(aov_names),
            "compression": None if compression in EXR_COMPRESSIONS else "zip",
        }

"""``rrtn-plugin degrade``: damage a frame sequence on disk (to make test or training material).

Frames are read in their colour space, damaged in the network's display-referred encoding
(the same on every colour channel; other channels such as alpha are kept) and written back in
the input's colour space, format and header, atomically. The whole clip is held in memory, since
scratches and flicker run through it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import torch

from rrtn_plugin.frames.image import read_pixels, write_image
from rrtn_plugin.frames.pipeline import FramePipeline, RenderedFrame
from rrtn_plugin.frames.plan import check_headers, check_target
from rrtn_plugin.frames.sequence import parse_pattern
from rrtn_plugin.synth.damage import degrade_clip
from rrtn_plugin.synth.params import DamageParams


def degrade_sequence(
    source: str | Path,
    target: str | Path,
    *,
    seed: int,
    input_colorspace: str | None = None,
    mask: str | Path | None = None,
    params: DamageParams | None = None,
) -> DamageParams:
    """Damage every frame of ``source`` into ``target`` (same frame numbers).

    Args:
        source, target: sequence patterns (``shot.####.exr``) or a folder for ``source``.
        seed: the damage's randomness.
        input_colorspace: the frames' colour space (None: the OCIO scene_linear role).
        mask: pattern for the ground-truth damage mask (single channel, 1 = damaged).
        params: fixed damage parameters (None: drawn from ``seed``).

    Returns:
        the damage parameters used.
    """
    inp = parse_pattern(source, must_exist=True)
    out = parse_pattern(target)
    check_target(out, inp)
    mask_out = parse_pattern(mask) if mask is not None else None
    if mask_out is not None:
        check_target(mask_out, inp)
    numbers = inp.frames_on_disk()
    infos = check_headers(inp, numbers)
    pipeline = FramePipeline(infos[0].channels, input_colorspace=input_colorspace)
    color, converter = pipeline.color, pipeline.converter
    originals = [read_pixels(inp.path(n))[1] for n in numbers]
    display = np.stack([converter.to_working(color.rgb(p)) for p in originals])
    damaged = degrade_clip(torch.from_numpy(display).clamp(0, 1), seed=seed, params=params)
    out.path(numbers[0]).parent.mkdir(parents=True, exist_ok=True)
    for info, number, pixels, frame in zip(
        infos, numbers, originals, damaged.frames.numpy(), strict=True
    ):
        linear = converter.from_working(np.ascontiguousarray(frame))
        result = pixels.copy()
        if len(color.indices) == 3:
            result[..., list(color.indices)] = linear
        else:
            result[..., color.indices[0]] = linear.mean(axis=2)
        untouched = np.zeros((*result.shape[:2], 0), np.float32)
        pipeline.write(RenderedFrame(info, result, [], untouched), out, number)
    if mask_out is not None:
        mask_out.path(numbers[0]).parent.mkdir(parents=True, exist_ok=True)
        for number, plane in zip(numbers, damaged.mask.numpy(), strict=True):
            spec = oiio.ImageSpec(
                plane.shape[1], plane.shape[0], 1, "half" if mask_out.format == "exr" else "uint8"
            )
            write_image(
                mask_out.path(number),
                plane[..., None].astype(np.float32),
                channels=("Y",),
                template=spec,
            )
    return damaged.params

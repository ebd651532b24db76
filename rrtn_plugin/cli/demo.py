"""The demo job: a damaged clip made on the fly, restored through the whole file pipeline.

A held-out still (never seen in training) is filmed by a synthetic camera and damaged with
:mod:`rrtn_plugin.synth`. The demo writes the damaged clip as scene-linear EXR frames,
restores them with :func:`restore_sequence` (colour conversion, engine, AOVs) and writes a
before/after contact sheet, measuring PSNR against the clean clip it started from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import torch

from rrtn_plugin.color import LUMA_WEIGHTS, Converter, load_config, working_colorspace
from rrtn_plugin.engine import Progress, RestoreOptions
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import read_pixels, write_image
from rrtn_plugin.frames.restore import JobReport, JobSettings, restore_sequence
from rrtn_plugin.model import RRTN
from rrtn_plugin.synth import degrade_clip
from rrtn_plugin.synth.footage import HELD_OUT_STILLS, camera_clip, load_still
from rrtn_plugin.training.quality import psnr

LINEAR = "Linear Rec.709 (sRGB)"
FIRST_FRAME = 1001


@dataclass
class DemoReport:
    job: JobReport
    psnr_damaged: float
    psnr_restored: float
    sheet: Path


def run_demo(
    out: Path,
    *,
    first: RRTN,
    second: RRTN | None,
    frames: int,
    width: int,
    height: int,
    seed: int,
    options: RestoreOptions,
    progress: Callable[[Progress], None] | None = None,
) -> DemoReport:
    """Make, damage, write, restore and compare a clip; everything goes under ``out``."""
    generator = torch.Generator().manual_seed(seed)
    clean_clip = camera_clip(
        load_still(HELD_OUT_STILLS[0]),
        frames=frames,
        height=height,
        width=width,
        generator=generator,
    )
    damaged_clip = degrade_clip(clean_clip, generator=generator)
    clean, damaged = clean_clip.numpy(), damaged_clip.frames.numpy()
    config = load_config()
    converter = Converter(config, source=LINEAR, working=working_colorspace(config))
    src_dir, dst_dir = out / "damaged", out / "restored"
    src_dir.mkdir(parents=True, exist_ok=True)
    template = oiio.ImageSpec(width, height, 3, "half")
    template.attribute("compression", "zip")
    template.attribute("oiio:ColorSpace", LINEAR)
    for t, frame in enumerate(damaged):
        linear = converter.from_working(np.repeat(frame[..., None], 3, axis=2))
        write_image(
            src_dir / f"demo.{FIRST_FRAME + t:04d}.exr",
            linear,
            channels=("R", "G", "B"),
            template=template,
        )
    settings = JobSettings(input_colorspace=LINEAR, aovs=(Aov.MASK, Aov.REPAIR), restore=options)
    job = restore_sequence(
        src_dir / "demo.####.exr",
        dst_dir / "demo.####.exr",
        first=first,
        second=second,
        settings=settings,
        progress=progress,
    )
    restored, masks = [], []
    for t in range(frames):
        info, pixels = read_pixels(dst_dir / f"demo.{FIRST_FRAME + t:04d}.exr")
        rgb = pixels[..., [info.index(c) for c in ("R", "G", "B")]]
        restored.append(converter.to_working(rgb) @ LUMA_WEIGHTS)
        masks.append(pixels[..., info.index("rrtn_mask.Y")])
    restored_clip, mask = np.stack(restored), np.stack(masks)
    sheet = out / "before_after.png"
    rows = sorted({0, frames // 3, (2 * frames) // 3, frames - 1})
    peak = max(float(mask.max()), 1e-6)
    contact = contact_sheet([damaged, restored_clip, clean, mask / peak], rows)
    write_image(
        sheet,
        contact[..., None],
        channels=("Y",),
        template=oiio.ImageSpec(contact.shape[1], contact.shape[0], 1, "uint8"),
    )
    return DemoReport(
        job=job,
        psnr_damaged=psnr(damaged_clip.frames, clean_clip),
        psnr_restored=psnr(torch.from_numpy(restored_clip), clean_clip),
        sheet=sheet,
    )


def contact_sheet(columns: list[np.ndarray], rows: list[int], gap: int = 4) -> np.ndarray:
    """(H', W') image: one row per frame index in ``rows``, one column per (T, H, W) clip."""
    _, height, width = columns[0].shape
    sheet = np.ones(
        (len(rows) * (height + gap) - gap, len(columns) * (width + gap) - gap), dtype=np.float32
    )
    for r, t in enumerate(rows):
        for c, clip in enumerate(columns):
            top, left = r * (height + gap), c * (width + gap)
            sheet[top : top + height, left : left + width] = np.clip(clip[t], 0, 1)
    return sheet

"""The demo job: a damaged clip made on the fly, restored through the whole file pipeline.

A held-out still (never seen in training) is filmed by a synthetic camera and damaged with
:mod:`rrtn_plugin.synth`. The demo writes the damaged clip as scene-linear EXR frames,
restores them with :func:`restore_sequence` (colour conversion, engine, AOVs) and writes a
before/after contact sheet, measuring PSNR against the clean clip it started from.

``rrtn-plugin demo`` (:func:`add_parser`) runs it with the bundled model or ``--model``; torch
and OpenImageIO load when it runs, not with its parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rrtn_plugin.cli.arguments import add_engine_arguments, command_parser, restore_options, size
from rrtn_plugin.cli.models import add_model_arguments, load_models
from rrtn_plugin.cli.progress import ProgressPrinter
from rrtn_plugin.options import RestoreOptions
from rrtn_plugin.progress import Progress

if TYPE_CHECKING:
    from rrtn_plugin.frames.restore import JobReport
    from rrtn_plugin.model import RRTN

LINEAR = "Linear Rec.709 (sRGB)"
FIRST_FRAME = 1001
DEMO_PASSES = 2
"""Passes with models other than the bundled one (which runs its own count)."""


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
    import OpenImageIO as oiio
    import torch

    from rrtn_plugin.color import LUMA_WEIGHTS, Converter, load_config, working_colorspace
    from rrtn_plugin.frames.aovs import Aov
    from rrtn_plugin.frames.image import read_pixels, write_image
    from rrtn_plugin.frames.restore import JobSettings, restore_sequence
    from rrtn_plugin.synth import degrade_clip
    from rrtn_plugin.synth.footage import HELD_OUT_STILLS, camera_clip, load_still
    from rrtn_plugin.training.quality import psnr

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


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = command_parser(
        commands, "demo", help="restore a synthetic damaged clip made on the fly"
    )
    add_model_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("rrtn-demo"), help="output folder")
    parser.add_argument("--frames", type=int, default=12, help="frames in the clip")
    parser.add_argument(
        "--size", type=size, default=(160, 128), help="WIDTHxHEIGHT (default: 160x128)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the camera and the damage")
    add_engine_arguments(parser, ["max_passes", "device"], passes=DEMO_PASSES)
    parser.set_defaults(run=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    options = restore_options(args, passes=DEMO_PASSES)
    first, second = load_models(args.model, args.model_second)
    width, height = args.size
    report = run_demo(
        args.out,
        first=first,
        second=second,
        frames=args.frames,
        width=width,
        height=height,
        seed=args.seed,
        options=options,
        progress=ProgressPrinter(),
    )
    print(
        f"restored {args.frames} frames of {width}x{height} in {report.job.seconds:.1f} s "
        f"({report.job.seconds / args.frames:.2f} s/frame) into {args.out / 'restored'}"
    )
    print(
        "passes: "
        + ", ".join(f"{p:.1f} dB" for p in report.job.pass_psnr)
        + " (PSNR between each pass's input and output)"
    )
    print(
        f"PSNR against the clean clip: damaged {report.psnr_damaged:.2f} dB, restored "
        f"{report.psnr_restored:.2f} dB"
    )
    print(f"wrote {report.sheet} (columns: damaged, restored, clean, noise mask)")
    return 0

"""A clip restored in one run against the same clip restored in farm chunks (in this process).

    python bench/farm.py [--model CHECKPOINT] [--frames 24] [--chunk 8] [--size 64x48]

Prints each way's time, the frames read per frame written, and the largest difference between
the two results over all frames and channels (the tolerance a chunked job is held to).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from rrtn_plugin.cli.models import load_models
from rrtn_plugin.engine import RestoreOptions
from rrtn_plugin.farm.chunks import plan_chunks
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import read_pixels, write_image
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.synth.samples import panning_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="default: the bundled model")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--size", default="64x48")
    parser.add_argument("--window", type=int, default=6)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    first, second = load_models(args.model, None)
    options = RestoreOptions(
        window=args.window,
        overlap=args.overlap,
        max_passes=args.passes,
        stop_psnr=float("inf"),
        device="cpu",
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        numbers = list(range(1001, 1001 + args.frames))
        (folder / "in").mkdir()
        for number, frame in zip(
            numbers, panning_clip(args.frames, height, width, seed=3), strict=True
        ):
            grey = np.repeat(frame.numpy()[..., None] ** 2.2, 3, axis=2)  # linear-ish values
            write_image(
                folder / "in" / f"plate.{number}.exr",
                grey,
                channels=["R", "G", "B"],
                template=oiio.ImageSpec(width, height, 3, "half"),
            )
        source = folder / "in" / "plate.####.exr"

        def run(target: str, frames: list[int], handles: int) -> float:
            started = time.perf_counter()
            restore_sequence(
                source,
                folder / target / "plate.####.exr",
                first=first,
                second=second,
                settings=JobSettings(
                    frames=frames,
                    handles=handles,
                    input_colorspace="lin_rec709",
                    aovs=(Aov.MASK,),
                    restore=options,
                ),
            )
            return time.perf_counter() - started

        whole = run("whole", numbers, 0)
        chunks = plan_chunks(
            numbers[0],
            numbers[-1],
            size=args.chunk,
            available=(numbers[0], numbers[-1]),
            window=args.window,
            overlap=args.overlap,
            passes=args.passes,
        )
        handles = max(c.handles for c in chunks)
        chunked = sum(run("chunked", list(range(c.first, c.last + 1)), handles) for c in chunks)
        worst = max(
            float(
                np.abs(
                    read_pixels(folder / "whole" / f"plate.{n}.exr")[1]
                    - read_pixels(folder / "chunked" / f"plate.{n}.exr")[1]
                ).max()
            )
            for n in numbers
        )
    read = sum(c.read_last - c.read_first + 1 for c in chunks) / len(numbers)
    print(
        f"{args.frames} frames {width}x{height}, window {args.window}/{args.overlap}, "
        f"{args.passes} passes, {len(chunks)} chunks of {args.chunk} (handles {handles})"
    )
    print(
        f"one run {whole:.1f} s; chunks {chunked:.1f} s in all ({chunked / whole:.2f}x); "
        f"{read:.2f} frames read per frame written"
    )
    print(f"largest difference, chunked against one run: {worst:.3g}")


if __name__ == "__main__":
    main()

"""Benchmark: the server's session cache, and its overhead over the in-process engine.

Starts a server in this process on loopback, writes a synthetic EXR clip, and times through
the client library (bytes transport):

1. a cold range (nothing cached);
2. the same range again (everything cached: no network run, no frame sent);
3. the range extended by ``--extend`` frames, against the extended range cold in a new session;
4. the same range run in-process (``restore_sequence``) against the cold server run.

    python bench/server.py [--model CKPT] [--frames 24] [--size 160x128] [--window 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import torch

from rrtn_plugin.client.library import Client
from rrtn_plugin.color import Converter, load_config, working_colorspace
from rrtn_plugin.engine import RestoreOptions
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import write_image
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.model import build_rrtn, load_rrtn
from rrtn_plugin.server.app import start_server
from rrtn_plugin.server.service import RestoreService, ServedModel, ServiceLimits
from rrtn_plugin.synth.samples import panning_clip

GOLDEN = Path(__file__).resolve().parents[2] / "shared/golden/rrtn-public/checkpoint.pth"
LINEAR = "Linear Rec.709 (sRGB)"


def write_clip(folder: Path, frames: int, width: int, height: int) -> None:
    config = load_config()
    converter = Converter(config, source=LINEAR, working=working_colorspace(config))
    spec = oiio.ImageSpec(width, height, 3, "half")
    for t, frame in enumerate(panning_clip(frames, height, width, seed=3).numpy()):
        rgb = converter.from_working(np.repeat(frame[..., None], 3, axis=2))
        write_image(folder / f"clip.{1001 + t}.exr", rgb, channels="RGB", template=spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=GOLDEN if GOLDEN.is_file() else None)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="160x128")
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--extend", type=int, default=4)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    width, height = (int(v) for v in args.size.split("x"))
    model = load_rrtn(args.model) if args.model else build_rrtn()
    options = {"window": args.window, "overlap": args.window // 2, "max_passes": 1}
    service = RestoreService(
        [ServedModel("rrtn", model)],
        device="cpu",
        limits=ServiceLimits(memory_budget=4 << 30, host_budget=4 << 30),
    )
    server = start_server(service, address="127.0.0.1:0")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; clip of "
        f"{args.frames} frames of {width}x{height}, window {args.window}, 1 pass"
    )
    last = 1000 + args.frames
    first_req, last_req = 1001 + args.frames // 4, last - args.frames // 4 - args.extend
    with tempfile.TemporaryDirectory() as tmp, Client(f"127.0.0.1:{server.port}") as client:
        folder = Path(tmp)
        write_clip(folder, args.frames, width, height)
        source = str(folder / "clip.####.exr")

        def timed(session, lo: int, hi: int, out: str) -> float:
            start = time.perf_counter()
            session.restore_files(lo, hi, input=source, output=str(folder / out / "o.####.exr"))
            return time.perf_counter() - start

        session = client.open_session(
            first_frame=1001,
            last_frame=last,
            width=width,
            height=height,
            input_colorspace=LINEAR,
            aovs=["mask"],
            **options,
        )
        cold = timed(session, first_req, last_req, "cold")
        again = timed(session, first_req, last_req, "again")
        extended = timed(session, first_req, last_req + args.extend, "extended")
        session.close()
        fresh = client.open_session(
            first_frame=1001,
            last_frame=last,
            width=width,
            height=height,
            input_colorspace=LINEAR,
            aovs=["mask"],
            **options,
        )
        cold_extended = timed(fresh, first_req, last_req + args.extend, "cold-extended")
        fresh.close()
        start = time.perf_counter()
        restore_sequence(
            source,
            folder / "local" / "o.####.exr",
            first=model,
            settings=JobSettings(
                frames=list(range(first_req, last_req + 1)),
                handles=args.frames,
                input_colorspace=LINEAR,
                aovs=(Aov.MASK,),
                restore=RestoreOptions(device="cpu", **options),
            ),
        )
        local = time.perf_counter() - start
    server.stop()
    n = last_req - first_req + 1
    print(f"frames {first_req}-{last_req} ({n}):")
    print(f"  cold through the server:     {cold:8.2f} s")
    print(f"  same range again (cached):   {again:8.2f} s  -> {cold / again:.0f}x faster")
    print(
        f"  extended by {args.extend} frames:        {extended:8.2f} s  (cold: "
        f"{cold_extended:.2f} s, {cold_extended / extended:.1f}x)"
    )
    print(
        f"  in-process job, same frames: {local:8.2f} s  (server overhead "
        f"{(cold - local) / local * 100:+.1f} %)"
    )


if __name__ == "__main__":
    main()

"""Training cost on this machine: the deformable convolution's two kernels, and whole steps.

Prints, for a forward + backward of the alignment's DCN at training size, torchvision's
``deform_conv2d`` against :func:`rrtn_plugin.model.deform.sampled_deform_conv2d` (what CPU
training uses), then seconds per optimizer step of the bundled model's size and of the paper's
size at the given crop.

    python bench/training.py [--crop 64] [--batch 4] [--frames 7] [--steps 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torchvision.ops import deform_conv2d

from rrtn_plugin.model import RRTNConfig
from rrtn_plugin.model.deform import sampled_deform_conv2d
from rrtn_plugin.training.train import SMALL_CONFIG, TrainProgress, TrainSettings, train


def time_dcn(
    kernel: str, *, batch: int, channels: int, groups: int, side: int, repeats: int = 5
) -> float:
    torch.manual_seed(0)
    x = torch.randn(batch, 2 * channels, side, side, requires_grad=True)
    offset = (torch.randn(batch, 18 * groups, side, side) * 2).requires_grad_()
    mask = torch.rand(batch, 9 * groups, side, side, requires_grad=True)
    weight = torch.randn(channels, 2 * channels, 3, 3, requires_grad=True)
    bias = torch.zeros(channels, requires_grad=True)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        if kernel == "torchvision":
            out = deform_conv2d(x, offset, weight, bias, padding=(1, 1), mask=mask)
        else:
            out = sampled_deform_conv2d(x, offset, weight, bias, mask)
        out.square().mean().backward()
        best = min(best, time.perf_counter() - started)
    return best


def time_steps(config: RRTNConfig, *, crop: int, batch: int, frames: int, steps: int) -> float:
    seconds: list[float] = []

    def record(p: TrainProgress) -> None:
        seconds.append(p.seconds_per_step)

    with tempfile.TemporaryDirectory() as out:
        train(
            TrainSettings(
                out=Path(out),
                steps=steps,
                batch=batch,
                frames=frames,
                crop=crop,
                config=config,
                save_every=steps,
            ),
            record,
        )
    return min(seconds[1:] or seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, cfg in (("bundled size", SMALL_CONFIG), ("paper size", RRTNConfig())):
        side = args.crop
        tv = time_dcn(
            "torchvision",
            batch=args.batch,
            channels=cfg.num_feat,
            groups=cfg.deform_groups,
            side=side,
        )
        ours = time_dcn(
            "sampled", batch=args.batch, channels=cfg.num_feat, groups=cfg.deform_groups, side=side
        )
        print(
            f"DCN forward+backward, {name} ({cfg.num_feat} ch, {cfg.deform_groups} groups, "
            f"{args.batch}x{side}x{side}): torchvision {tv * 1e3:.1f} ms, sampled "
            f"{ours * 1e3:.1f} ms ({tv / ours:.1f}x)"
        )
    for name, cfg in (
        ("bundled size", SMALL_CONFIG),
        ("paper size", replace(RRTNConfig(), flow_source="dis")),
    ):
        step = time_steps(
            cfg, crop=args.crop, batch=args.batch, frames=args.frames, steps=args.steps
        )
        print(
            f"train step, {name}, batch {args.batch} x {args.frames} frames x {args.crop}^2: "
            f"{step:.2f} s"
        )


if __name__ == "__main__":
    main()

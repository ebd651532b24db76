"""Benchmark: the forward per frame, and a whole clip through the engine vs a naive schedule.

The naive schedule is the reference driver's: windows of ``--window`` frames every
``--window − --overlap`` frames, each run through ``model(lq)``, which estimates RAFT flow
again for every window, keeping the first window's frames and each later window's new ones.
The engine runs the same windows but estimates each frame pair's flow once and cross-fades.
Same weights, clip and thread count; best of ``--repeat`` runs.

    python bench/engine.py [--model CKPT] [--frames 45] [--height 128] [--width 160]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from rrtn_plugin.engine import RestoreOptions, restore_clip
from rrtn_plugin.model import RRTN, build_rrtn, load_rrtn
from rrtn_plugin.samples import panning_clip

GOLDEN = Path(__file__).resolve().parents[2] / "shared/golden/rrtn-public/checkpoint.pth"


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def reference_windows(frames: int, *, window: int, stride: int) -> list[tuple[int, int]]:
    """restore.py's windows: every ``stride`` frames until one reaches the clip's end."""
    windows = []
    for start in range(0, frames, stride):
        windows.append((start, min(start + window, frames)))
        if start + window >= frames:
            break
    return windows


def naive_schedule(model: RRTN, lq: torch.Tensor, *, window: int, stride: int) -> torch.Tensor:
    """The reference driver's loop over (1, T, 1, H, W): flows recomputed in every window."""
    parts = []
    for start, stop in reference_windows(lq.shape[1], window=window, stride=stride):
        out = model(lq[:, start:stop])
        parts.append(out if start == 0 else out[:, -(stop - start - (window - stride)):])
    return torch.cat(parts, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=GOLDEN if GOLDEN.is_file() else None,
                        help="checkpoint (default: the golden one when ../shared exists, else "
                             "random weights; timing does not depend on the weights)")
    parser.add_argument("--frames", type=int, default=45)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--window", type=int, default=30)
    parser.add_argument("--overlap", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--reference-defaults", action="store_true",
                        help="also time the naive schedule with restore.py's own defaults "
                             "(15-frame windows every 3 frames)")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    model = load_rrtn(args.model) if args.model else build_rrtn()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model "
          f"{args.model or 'random weights'}")

    h, w = args.height, args.width
    clip = panning_clip(args.frames, h, w, seed=1)
    lq = (clip * 2 - 1)[None, :, None]

    six = lq[:, :6]
    forward = best_of(args.repeat, lambda: model(six))
    flow = best_of(args.repeat, lambda: model.compute_flow(six))
    print(f"forward, 6 frames of {w}x{h}: {forward / 6:.2f} s/frame "
          f"(RAFT {flow / 6:.2f} s/frame, rest {(forward - flow) / 6:.2f} s/frame)")

    stride = args.window - args.overlap
    naive = best_of(args.repeat, lambda: naive_schedule(model, lq, window=args.window,
                                                        stride=stride))
    reference = None
    if args.reference_defaults:
        reference = best_of(args.repeat, lambda: naive_schedule(model, lq, window=15, stride=3))
    options = RestoreOptions(window=args.window, overlap=args.overlap, max_passes=1, tile=0,
                             device="cpu")
    result = restore_clip(clip, first=model, options=options)
    engine = best_of(args.repeat, lambda: restore_clip(clip, first=model, options=options))
    naive_pairs = 2 * sum(stop - start for start, stop in
                          reference_windows(args.frames, window=args.window, stride=stride))
    print(f"clip of {args.frames} frames of {w}x{h}, window {args.window}, overlap "
          f"{args.overlap}: windows {result.windows}")
    print(f"  naive schedule (flows per window, {naive_pairs} RAFT pairs): {naive:.1f} s "
          f"({naive / args.frames:.2f} s/frame)")
    print(f"  engine (flows once, {result.flow_pairs[0]} RAFT pairs):        {engine:.1f} s "
          f"({engine / args.frames:.2f} s/frame)")
    print(f"  speed-up: {naive / engine:.2f}x")
    if reference is not None:
        print(f"  naive schedule with restore.py's defaults (window 15, stride 3): "
              f"{reference:.1f} s ({reference / args.frames:.2f} s/frame), "
              f"{reference / engine:.2f}x the engine's time")


if __name__ == "__main__":
    main()

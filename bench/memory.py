"""Benchmark: peak memory of the network on one window, against the engine's memory rule.

Each measurement runs in its own process (peak RSS is per process) with random weights (memory
does not depend on them), under inference mode and the engine's allocator settings, and prints
the measured peak above the loaded model next to ``restorer_bytes`` from
:mod:`rrtn_plugin.engine.memory`.

    python bench/memory.py [--sizes 128x128,256x256,512x512] [--frames 2,6,12]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def measure(frames: int, height: int, width: int) -> dict:
    """Run in a child process: peak RSS growth of ``RRTN.restore`` on one window."""
    import torch

    from rrtn_plugin.engine.device import tune_host_allocator
    from rrtn_plugin.model import build_rrtn

    tune_host_allocator()  # as the engine runs on CPU
    model = build_rrtn()
    lq = torch.rand(1, frames, 1, height, width) * 2 - 1
    mask = torch.rand(1, frames, 1, height, width)
    flows = torch.randn(1, frames - 1, 2, height, width)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.inference_mode():
        model.restore(lq, noise_mask=mask, flows_forward=flows, flows_backward=flows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"frames": frames, "height": height, "width": width, "bytes": (peak - base) * 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128x128,256x256,512x512")
    parser.add_argument("--frames", default="2,6,12")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*(int(v) for v in args.child.split(",")))))
        return

    from rrtn_plugin.engine.memory import restorer_bytes

    print(f"{'window':>14} {'measured MB':>12} {'rule MB':>9} {'B/px':>7}")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        for frames in (int(v) for v in args.frames.split(",")):
            child = subprocess.run(
                [sys.executable, __file__, "--child", f"{frames},{height},{width}"],
                check=True,
                capture_output=True,
                text=True,
            )
            got = json.loads(child.stdout)
            rule = restorer_bytes(frames, height, width)
            print(
                f"{frames:>3} x {width}x{height:<5} {got['bytes'] / 2**20:>12.0f} "
                f"{rule / 2**20:>9.0f} {got['bytes'] / (height * width):>7.0f}"
            )


if __name__ == "__main__":
    main()

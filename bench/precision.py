"""Benchmark: bf16 and fp16 autocast against fp32, per recursion pass, on the golden clip.

Each pass restores the previous pass's output (the first pass the golden input), as the engine's
recursion does. For each precision, the table gives per pass:

- the pass's own error: the reduced-precision pass against the fp32 pass on the *same* input
  (the fp32 chain's), largest and mean absolute difference in [-1, 1] units and its PSNR on the
  8-bit scale;
- the chain's error: the reduced-precision chain against the fp32 chain after that many passes;
- the flows' largest difference in pixels (first pass), and the time of the pass.

Runs on CUDA when present, else on the CPU (CPU autocast: the same number formats, other kernels).
Without ../shared it uses random weights and a synthetic clip.

Measured when bf16 went in: on a CPU with AVX512-BF16 or AMX (the test machine) bf16 ran 1.3–1.4×
as fast as fp32; on CPUs without oneDNN bf16 kernels it runs tens of times slower.

    python bench/precision.py [--passes 4] [--device cpu|cuda] [--precisions bf16,fp16]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from rrtn_plugin.engine.device import PRECISIONS, autocast, tune_host_allocator
from rrtn_plugin.model import RRTN, build_rrtn, load_rrtn
from rrtn_plugin.synth.samples import panning_clip

GOLDEN = Path(__file__).resolve().parents[2] / "shared/golden/rrtn-public"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between [-1, 1] frames, on the [0, 1] scale."""
    mse = ((a - b) / 2).square().mean().item()
    return math.inf if mse == 0 else -10 * math.log10(mse)


def run_pass(
    model: RRTN, lq: torch.Tensor, precision: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One pass: (output, forward flows, seconds), all returned as fp32."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    with torch.inference_mode(), autocast(precision, device):
        flows_forward, flows_backward = model.compute_flow(lq)
        mask = model.noise_mask(lq, flows_forward, flows_backward)
        out = model.restore(
            lq,
            noise_mask=mask,
            flows_forward=flows_forward[:, :-1],
            flows_backward=flows_backward[:, :-1],
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out.float(), flows_forward.float(), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--precisions",
        default="bf16,fp16",
        help="which to compare with fp32 (fp16 on CPU is emulated: minutes)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        tune_host_allocator()

    checkpoint = GOLDEN / "checkpoint.pth"
    model = (load_rrtn(checkpoint) if checkpoint.is_file() else build_rrtn()).to(device)
    if (GOLDEN / "input.pt").is_file():
        lq = torch.load(GOLDEN / "input.pt", weights_only=True)
    else:
        lq = (panning_clip(6, 128, 160, seed=1) * 2 - 1)[None, :, None]
    lq = lq.to(device)
    print(
        f"torch {torch.__version__} on {device}, model "
        f"{checkpoint if checkpoint.is_file() else 'random weights'}, "
        f"clip {tuple(lq.shape)}"
    )

    run_pass(model, lq, "fp32", device)  # warm-up
    reference = []  # the fp32 chain: (input, output, flows, seconds) per pass
    x = lq
    for _ in range(args.passes):
        out, flows, seconds = run_pass(model, x, "fp32", device)
        reference.append((x, out, flows, seconds))
        x = out
    print(f"fp32: {', '.join(f'{r[3]:.2f}' for r in reference)} s per pass")

    for precision in args.precisions.split(","):
        if precision not in PRECISIONS or precision == "fp32":
            raise SystemExit(f"unknown precision {precision!r}: give bf16 and/or fp16")
        print(f"{precision}:")
        print(
            f"  {'pass':>4} {'max |Δ|':>9} {'mean |Δ|':>9} {'PSNR dB':>8} "
            f"{'chain max':>10} {'chain PSNR':>10} {'flow px':>8} {'s':>6}"
        )
        chain = lq
        for number, (x, expected, flows32, _) in enumerate(reference, start=1):
            try:
                out, flows, seconds = run_pass(model, x, precision, device)
                chained, _, _ = run_pass(model, chain, precision, device)
            except RuntimeError as exc:  # a kernel without this precision on this device
                print(f"  not supported on {device}: {str(exc).splitlines()[0]}")
                break
            diff = (out - expected).abs()
            flow = "" if number > 1 else f"{(flows - flows32).abs().max().item():.3f}"
            print(
                f"  {number:>4} {diff.max().item():>9.4f} {diff.mean().item():>9.5f} "
                f"{psnr(out, expected):>8.1f} "
                f"{(chained - expected).abs().max().item():>10.4f} "
                f"{psnr(chained, expected):>10.1f} {flow:>8} {seconds:>6.2f}"
            )
            chain = chained


if __name__ == "__main__":
    main()

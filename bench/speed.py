"""Benchmark: what each optimisation of the forward buys, against the unoptimised path.

Two measurements, same weights, same threads, variants timed in turn within each repeat (so a
slow spell of the machine hits all of them) and the best of ``--repeat`` kept:

1. The forward on one clip (the golden 6 frames of 128×160 when ../shared is present), starting
   from the reference's arithmetic and switching the optimisations on one at a time: RAFT per
   clip (encoders once per frame, the context's share of the refinement gates once per pair,
   the final flow only upsampled, the correlation looked up with one matrix product per level)
   instead of torchvision's RAFT per pair; window attention with the bias added inside a
   batched matmul (SDPA on GPUs); the Swin linear layers as oneDNN 1×1 convolutions; the
   grid_sample deformable conv; channels-last Swin convolutions; channels-last maps for the
   other convolutions (RAFT, alignment, feature extraction, reconstruction); per-frame stages
   batched; ``torch.inference_mode``; and, with ``--compile``, ``torch.compile``. Each line
   gives the time per frame, the speed-up over the line before and over the reference path,
   and the largest difference from its output.
2. With ``--clip-frames F``: a whole clip of F frames, one pass, through the reference's schedule
   (windows every ``stride`` frames until one reaches the end, each through the unoptimised
   forward, which estimates flow again in every window; restore.py's defaults, 15-frame windows
   every 3 frames, and the engine's 30 every 15) against the engine (30-frame windows
   overlapping by 15, every frame pair's flow once, cross-faded, all optimisations).

Each variant is a :class:`~rrtn_plugin.model.kernels.Kernels` value given to the model
(``model.set_kernels``), plus the flow path and grad mode this script picks.

The engine tunes glibc's allocator on CPU
(:func:`~rrtn_plugin.engine.device.tune_host_allocator`); so does this script, for all
variants, unless ``--default-allocator``: run both ways to see what the tuning alone is worth.

    python bench/speed.py [--model CKPT] [--repeat 3] [--clip-frames 45] [--compile]
                          [--default-allocator]

Figures measured when each choice was made (2 CPU cores, AVX-512, 128×160 unless said; rerun
this script for today's):

- channels-last maps (``Kernels.channels_last_on_cpu``): RAFT's refinement convolutions
  1.1–1.3× as fast, the full-resolution convolutions with few channels 1.5–2.6×; concatenating
  maps straight into the layout (``cat_for_convolution``) 0.4 ms for an 80-channel map against
  1.6 ms for a concatenation then a reorder.
- window attention with the bias in a batched matmul (``Kernels.attention``): half the
  attention's time of SDPA's CPU kernel for these 64-token windows of 16-dim heads.
- the Swin linear layers as oneDNN 1×1 convolutions (``Kernels.linear_as_convolution``): about
  twice as fast as MKL's matmul on an AMD CPU, for the 64- and 128-channel layers.
- the grid_sample deformable convolution (``Kernels.deform``): about 4× as fast as
  torchvision's CPU kernel forward, an order of magnitude backward (``bench/training.py``).
- the alignment's offset convolutions writing channels-first maps: 3 ms less per call in the
  deformable convolution than channels-last outputs, whose convolutions are 1.5 ms faster.
- glibc's allocator untuned: page faults were a third of the network's time.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from rrtn_plugin.engine import RestoreOptions, restore_clip
from rrtn_plugin.engine.device import tune_host_allocator
from rrtn_plugin.model import RRTN, build_rrtn, load_rrtn
from rrtn_plugin.model.flow import raft_input
from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.synth.samples import panning_clip

GOLDEN = Path(__file__).resolve().parents[2] / "shared/golden/rrtn-public"


@dataclass(frozen=True)
class Variant:
    """Which optimisations are on."""

    label: str
    clip_flow: bool = False
    attention_kernel: bool = False
    onednn_linear: bool = False
    sampled_deform: bool = False
    channels_last: bool = False
    channels_last_convs: bool = False
    frame_batching: bool = False
    inference_mode: bool = False
    compiled: bool = False


def _steps() -> list[Variant]:
    """The reference path, then each optimisation switched on in turn, keeping the earlier."""
    switches = [
        ("+ RAFT per clip", "clip_flow"),
        ("+ attention kernel", "attention_kernel"),
        ("+ oneDNN linear", "onednn_linear"),
        ("+ grid_sample DCN", "sampled_deform"),
        ("+ channels-last Swin", "channels_last"),
        ("+ channels-last convs", "channels_last_convs"),
        ("+ frame batching", "frame_batching"),
        ("+ inference_mode", "inference_mode"),
    ]
    steps, on = [Variant("reference path")], {}
    for label, switch in switches:
        on[switch] = True
        steps.append(Variant(label, **on))
    return steps


STEPS = _steps()
REFERENCE, OPTIMISED = STEPS[0], STEPS[-1]


def kernels_for(variant: Variant) -> Kernels:
    """The kernels ``variant`` asks for: the defaults where its optimisations are on."""
    return Kernels(
        attention="auto" if variant.attention_kernel else "reference",
        deform="sampled" if variant.sampled_deform else "torchvision",
        linear_as_convolution=variant.onednn_linear,
        swin_channels_last=variant.channels_last,
        channels_last_on_cpu=variant.channels_last_convs,
        frame_batch=Kernels().frame_batch if variant.frame_batching else 1,
    )


def configure(model: RRTN, variant: Variant) -> None:
    """Switch the model's kernels to what ``variant`` asks for."""
    model.set_kernels(kernels_for(variant))


@contextlib.contextmanager
def grad_mode(variant: Variant) -> Iterator[None]:
    with torch.inference_mode() if variant.inference_mode else torch.no_grad():
        yield


def pairwise_flows(model: RRTN, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's ``compute_flow``: two torchvision RAFT calls of T pairs each, every frame
    encoded once per pair it is in, all 24 refinements upsampled, the last one kept."""
    n, t, c, h, w = lq.shape
    frames = lq.reshape(-1, c, h, w)
    results = []
    for pairs in (
        [(i + 1, i) for i in range(t - 1)] + [(0, 2)],
        [(i, i + 1) for i in range(t - 1)] + [(t - 1, t - 3)],
    ):
        first = [k * t + a for k in range(n) for a, _ in pairs]
        second = [k * t + b for k in range(n) for _, b in pairs]
        flows = model.flow_net(
            raft_input(frames[first]),
            raft_input(frames[second]),
            num_flow_updates=model.config.flow_updates,
        )[-1]
        results.append(flows.view(n, t, 2, h, w))
    return results[0], results[1]


def forward(model: RRTN, lq: torch.Tensor, variant: Variant) -> torch.Tensor:
    """(N, T, C, H, W) → restored, the way ``variant`` computes it."""
    with grad_mode(variant):
        if variant.clip_flow:
            flows_forward, flows_backward = model.compute_flow(lq)
        else:
            flows_forward, flows_backward = pairwise_flows(model, lq)
        mask = model.noise_mask(lq, flows_forward, flows_backward)
        return model.restore(
            lq,
            noise_mask=mask,
            flows_forward=flows_forward[:, :-1],
            flows_backward=flows_backward[:, :-1],
        ).clone()


def timed_round_robin(jobs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each job, the jobs taking turns ``repeat`` times."""
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(repeat):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def reference_schedule(model: RRTN, lq: torch.Tensor, *, window: int, stride: int) -> torch.Tensor:
    """restore.py's loop: windows every ``stride`` frames until one reaches the end; the first
    window's frames and each later window's new ones are kept."""
    parts = []
    frames = lq.shape[1]
    for start in range(0, frames, stride):
        stop = min(start + window, frames)
        out = forward(model, lq[:, start:stop], REFERENCE)
        parts.append(out if start == 0 else out[:, -(stop - start - (window - stride)) :])
        if start + window >= frames:
            break
    return torch.cat(parts, dim=1)


def bench_forward(
    load: Callable[[], RRTN], lq: torch.Tensor, *, repeat: int, compiled: bool
) -> None:
    model = load()
    steps = list(STEPS)
    models = dict.fromkeys((v.label for v in steps), model)
    if compiled:  # a model of its own: compiled modules keep their compiled code
        variant = Variant(**{**OPTIMISED.__dict__, "label": "+ torch.compile", "compiled": True})
        steps.append(variant)
        models[variant.label] = load()
        configure(models[variant.label], variant)
        start = time.perf_counter()
        models[variant.label].compile_steps()
        forward(models[variant.label], lq, variant)
        print(f"torch.compile: first forward {time.perf_counter() - start:.1f} s")
    outputs = {}
    for variant in steps:  # warm-up, and the outputs to compare
        configure(models[variant.label], variant)
        outputs[variant.label] = forward(models[variant.label], lq, variant)

    def job(variant: Variant) -> Callable[[], object]:
        def run() -> object:
            configure(models[variant.label], variant)
            return forward(models[variant.label], lq, variant)

        return run

    times = timed_round_robin({v.label: job(v) for v in steps}, repeat)
    frames = lq.shape[1]
    reference = outputs[REFERENCE.label]
    print(f"forward on {frames} frames of {lq.shape[-1]}x{lq.shape[-2]} (best of {repeat}):")
    print(f"  {'':<24}{'s/frame':>8}{'step':>8}{'total':>8}{'max |Δ| vs ref':>16}")
    previous = None
    for variant in steps:
        seconds = times[variant.label]
        step = "" if previous is None else f"{previous / seconds:.2f}x"
        diff = (outputs[variant.label] - reference).abs().max().item()
        print(
            f"  {variant.label:<24}{seconds / frames:>8.3f}{step:>8}"
            f"{times[REFERENCE.label] / seconds:>7.2f}x{diff:>16.2e}"
        )
        previous = seconds


def bench_clip(model: RRTN, frames: int, height: int, width: int, *, repeat: int) -> None:
    clip = panning_clip(frames, height, width, seed=1)
    lq = (clip * 2 - 1)[None, :, None]
    options = RestoreOptions(window=30, overlap=15, max_passes=1, tile=0, device="cpu")

    def engine() -> object:
        configure(model, OPTIMISED)
        return restore_clip(clip, first=model, options=options)

    def reference(window: int, stride: int) -> Callable[[], object]:
        def run() -> object:
            configure(model, REFERENCE)
            return reference_schedule(model, lq, window=window, stride=stride)

        return run

    times = timed_round_robin(
        {
            "reference 15/3": reference(15, 3),
            "reference 30/15": reference(30, 15),
            "engine": engine,
        },
        repeat,
    )
    engine_time = times["engine"]
    print(f"clip of {frames} frames of {width}x{height}, one pass (best of {repeat}):")
    for name, label in (
        (
            "reference 15/3",
            "reference schedule, restore.py's defaults (15-frame windows every 3 frames)",
        ),
        ("reference 30/15", "reference schedule, the engine's windows (30 frames every 15)"),
        ("engine", "engine (30-frame windows every 15, flows once)"),
    ):
        seconds = times[name]
        print(
            f"  {label}: {seconds:.1f} s ({seconds / frames:.2f} s/frame, "
            f"{seconds / engine_time:.2f}x the engine's time)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        help="checkpoint (default: the golden one when "
        "../shared exists, else random weights; speed does not depend on them)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--clip-frames",
        type=int,
        default=0,
        help="also time a whole clip of this many frames (e.g. 45)",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc as it is (the engine tunes it on CPU)",
    )
    args = parser.parse_args()
    if not args.default_allocator:
        tune_host_allocator()

    checkpoint = args.model or (GOLDEN / "checkpoint.pth")

    def load() -> RRTN:
        return load_rrtn(checkpoint) if checkpoint.is_file() else build_rrtn()

    if (GOLDEN / "input.pt").is_file():
        lq = torch.load(GOLDEN / "input.pt", weights_only=True)
    else:
        lq = (panning_clip(6, 128, 160, seed=1) * 2 - 1)[None, :, None]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, model "
        f"{checkpoint if checkpoint.is_file() else 'random weights'}, "
        f"{'default' if args.default_allocator else 'tuned'} allocator"
    )
    bench_forward(load, lq, repeat=args.repeat, compiled=args.compile)
    if args.clip_frames:
        bench_clip(load(), args.clip_frames, lq.shape[-2], lq.shape[-1], repeat=args.repeat)


if __name__ == "__main__":
    main()

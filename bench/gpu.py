"""Benchmark on a CUDA GPU: correctness, speed, memory, server overhead and GPU utilisation.

One script for the first GPU the product meets; about 5 minutes on one H100/H200-class GPU.
Sections (each skippable with ``--skip``):

1. ``correctness``: the golden clip (``../shared/golden/rrtn-public``, or ``$RRTN_SHARED``) on
   the GPU against the reference's tensors: fp32 within 1e-3 on pass 1 (``output.pt``) and pass
   2 (``output_rec2.pt``), both with PyTorch's TF32 defaults (cuDNN convolutions in TF32: what
   the engine runs) and with TF32 off; bf16 and fp16 as PSNR against fp32, per recursion pass
   and chained over the passes.
2. ``network``: one pass of the engine (flows at ``flow_max_pixels``, masks, propagation,
   reconstruction, tiles if the memory budget asks for them) over a 30-frame window at 2K
   (2048×1556) and HD (1920×1080) in bf16, fp16 and fp32: frames/s, peak CUDA memory, the
   window and tiles the engine chose, RAFT's share of the time; where the budget made the
   engine tile 2K, bf16 once more in whole frames (what the GPU really needs); then each
   variant again with ``torch.compile``. Random weights of the released checkpoints' size
   (or ``--model``). The 2K variants run first and always; HD, whole-frame and compiled
   variants (compiling takes a minute or more each) run after the 4K and server sections
   while ``--time-limit`` (280 s) allows, judged by the last such variant's time, and are
   reported as skipped otherwise.
3. ``4k``: 4096×3112 through the engine's tiling within a stated ``--budget-4k`` (40 GiB):
   frames/s, peak memory against the budget, the largest tile, and whether the window stayed
   whole (the engine shortens windows only when not even 128-px tiles fit).
4. ``server``: a 2K EXR clip (half float RGB) through a server on loopback (bytes transport:
   ``Client.open_session`` + ``Session.restore_files``, EXR out) against the same frames in the
   in-process engine: the server's overhead in percent and the rates frames go in (send,
   decode) and come out (render, encode, receive).
5. ``utilisation``: FLOPs per frame counted from the model (``FlopCounterMode``: the network
   after flow at the real size on the meta device, RAFT at two small sizes scaled by its
   a·P + b·P² form) times frames/s, against the GPU's dense datasheet peak (by its name) and a
   measured matrix-product rate.

A summary of the targets comes first in the report (2K ≥ 24 frames/s per pass in bf16 on
H100/H200 class, 4K without running out of memory, server overhead ≤ 10 %). Tables go to the
terminal and to ``--out`` (default ``bench-gpu/``) as ``report.md`` and ``report.json``.

    python bench/gpu.py [--quick] [--out DIR] [--skip server,4k] [--precisions bf16,fp32]
                        [--sizes 2K] [--frames 30] [--no-compile] [--time-limit 280]
                        [--budget-4k 40] [--model CKPT] [--golden DIR] [--server-address unix]

Exit status: 0 when everything ran (targets missed are reported, not failed), 1 when a
correctness check or the 4K run failed or a section broke, 2 without a CUDA GPU (one line).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

if TYPE_CHECKING:
    from rrtn_plugin.engine import RestoreOptions
    from rrtn_plugin.model import RRTN, RRTNConfig

NO_CUDA = "bench/gpu.py needs a CUDA GPU: torch.cuda.is_available() is False on this machine"
REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("RRTN_SHARED", REPO.parent / "shared")) / "golden" / "rrtn-public"

SIZES = {"2K": (2048, 1556), "HD": (1920, 1080), "4K": (4096, 3112)}
"""Frame sizes, (width, height)."""
TINY_SIZES = {"2K": (160, 128), "HD": (176, 128), "4K": (256, 208)}
"""--tiny: the sizes' stand-ins, so that the whole script runs in seconds on a CPU."""
PRECISIONS = ("bf16", "fp16", "fp32")
SECTIONS = ("correctness", "network", "4k", "server", "utilisation")

TARGET_2K_FPS = 24.0
TARGET_OVERHEAD = 10.0
FP32_TOLERANCE = 1e-3
PSNR_BOUND = 50.0
CACHE_SHARE = 0.25
"""Part of the budget the engine's one-call restore keeps for cached flows and masks."""
GiB = 2**30

OK, MISS, FAIL, SKIPPED = "ok", "miss", "FAIL", "skipped"


# -- tables ------------------------------------------------------------------------------------


def format_cell(value: object, spec: str = "") -> str:
    """A table cell as text: None and NaN as "–", infinities as "∞", numbers by ``spec``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
    if isinstance(value, int | float) and spec:
        return format(value, spec)
    return str(value)


def json_value(value: object) -> object:
    """A cell for JSON: NaN → null, ±infinity → "inf"/"-inf" (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class Table:
    """One section's results: columns of (name, format spec), rows of raw values, notes."""

    key: str
    title: str
    columns: list[tuple[str, str]]
    rows: list[list[object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float | None = None

    def add(self, *values: object) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"{self.key}: {len(values)} values for {len(self.columns)} columns")
        self.rows.append(list(values))

    def add_some(self, values: dict[str, object]) -> None:
        """A row from some columns' values by name; the others empty (None)."""
        names = [name for name, _ in self.columns]
        unknown = set(values) - set(names)
        if unknown:
            raise ValueError(f"{self.key}: no column(s) {', '.join(sorted(unknown))}")
        self.rows.append([values.get(name) for name in names])

    def cells(self) -> list[list[str]]:
        return [
            [format_cell(v, spec) for v, (_, spec) in zip(row, self.columns, strict=True)]
            for row in self.rows
        ]

    def text(self) -> str:
        """Aligned plain text, for the terminal."""
        names = [name for name, _ in self.columns]
        cells = self.cells()
        widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
        numeric = [bool(spec) for _, spec in self.columns]

        def line(values: Sequence[str]) -> str:
            return "  ".join(
                v.rjust(w) if num else v.ljust(w)
                for v, w, num in zip(values, widths, numeric, strict=True)
            ).rstrip()

        took = f" ({self.seconds:.1f} s)" if self.seconds is not None else ""
        out = [f"== {self.title}{took} =="]
        if self.rows:
            out += [line(names), line(["-" * w for w in widths])]
            out += [line(r) for r in cells]
        out += [f"  * {note}" for note in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        """A GitHub Markdown table under a heading, notes as a list."""

        def row(values: Sequence[str]) -> str:
            return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

        took = f" ({self.seconds:.1f} s)" if self.seconds is not None else ""
        out = [f"### {self.title}{took}", ""]
        if self.rows:
            out.append(row([name for name, _ in self.columns]))
            out.append("| " + " | ".join("---:" if s else "---" for _, s in self.columns) + " |")
            out += [row(r) for r in self.cells()]
            out.append("")
        out += [f"- {note}" for note in self.notes]
        return "\n".join(out).rstrip() + "\n"

    def as_dict(self) -> dict[str, object]:
        names = [name for name, _ in self.columns]
        return {
            "title": self.title,
            "columns": names,
            "rows": [{n: json_value(v) for n, v in zip(names, r, strict=True)} for r in self.rows],
            "notes": self.notes,
            "seconds": self.seconds,
        }


def write_report(out: Path, meta: dict[str, object], tables: Sequence[Table]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` under ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# rrtn-plugin GPU benchmark", ""]
    lines += [f"- {key}: {format_cell(value)}" for key, value in meta.items()]
    lines.append("")
    for table in tables:
        lines += [table.markdown()]
    md, js = out / "report.md", out / "report.json"
    md.write_text("\n".join(lines).rstrip() + "\n")
    report = {"meta": meta, "tables": {t.key: t.as_dict() for t in tables}}
    js.write_text(json.dumps(report, indent=1, default=str) + "\n")
    return md, js


# -- peaks and FLOPs ---------------------------------------------------------------------------


class Peak(NamedTuple):
    """Dense datasheet rates in TFLOP/s: plain fp32, TF32 tensor cores, bf16/fp16 tensor cores."""

    fp32: float
    tf32: float
    bf16: float


PEAKS: list[tuple[str, str, Peak]] = [
    (r"\bGH200\b", "GH200", Peak(67, 494, 989)),
    (r"\bH200\b.*\bNVL\b", "H200 NVL", Peak(60, 418, 835)),
    (r"\bH200\b", "H200 SXM", Peak(67, 494, 989)),
    (r"\bH100\b.*\bPCIe\b", "H100 PCIe", Peak(51, 378, 756)),
    (r"\bH100\b.*\bNVL\b", "H100 NVL", Peak(60, 418, 835)),
    (r"\bH100\b", "H100 SXM", Peak(67, 494, 989)),
    (r"\bA100\b", "A100", Peak(19.5, 156, 312)),
    (r"\bL40S\b", "L40S", Peak(91.6, 183, 362)),
    (r"\bL40\b", "L40", Peak(90.5, 90.5, 181)),
    (r"\bL4\b", "L4", Peak(30.3, 60, 121)),
    (r"\bA10\b", "A10", Peak(31.2, 62.5, 125)),
    (r"\bRTX 4090\b", "RTX 4090", Peak(82.6, 82.6, 165.2)),
    (r"\bRTX 6000 Ada\b", "RTX 6000 Ada", Peak(91.1, 182.1, 364.2)),
]
"""Vendor datasheets' dense (no sparsity) rates; first match wins, so specific names first.
Leads, not measurements: the matrix-product probe measures what this card does."""


def peak_tflops(device_name: str, precision: str) -> tuple[str, float] | None:
    """(the GPU it was matched as, dense TFLOP/s) for ``precision`` (fp32, tf32, bf16, fp16),
    or None for a GPU not in :data:`PEAKS`."""
    for pattern, label, peak in PEAKS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            rate = {"fp32": peak.fp32, "tf32": peak.tf32, "bf16": peak.bf16, "fp16": peak.bf16}
            if precision not in rate:
                raise ValueError(f"unknown precision {precision!r}")
            return label, rate[precision]
    return None


def fit_flops(samples: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(a, b) with FLOPs = a·P + b·P² through two (pixels P, FLOPs) samples.

    RAFT's convolutions grow with the pixel count and its all-pairs correlation with its
    square, so two counts at small sizes give the count at any size.
    """
    (p1, f1), (p2, f2) = samples
    if p1 <= 0 or p2 <= 0 or p1 == p2:
        raise ValueError(f"need two different positive pixel counts, got {p1} and {p2}")
    b = (f2 / p2 - f1 / p1) / (p2 - p1)
    return f1 / p1 - b * p1, b


def flops_at(fit: tuple[float, float], pixels: float) -> float:
    """FLOPs at ``pixels`` by a :func:`fit_flops` fit."""
    a, b = fit
    return a * pixels + b * pixels * pixels


def utilisation(flops_per_frame: float, frames_per_second: float, peak_tflops: float) -> float:
    """Percent of ``peak_tflops`` that ``frames_per_second`` frames of ``flops_per_frame`` are."""
    return 100.0 * flops_per_frame * frames_per_second / (peak_tflops * 1e12)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between frames in [-1, 1], on the [0, 1] scale."""
    mse = ((a.float() - b.float()) / 2).square().mean().item()
    if math.isnan(mse):
        return math.nan
    return math.inf if mse == 0 else -10 * math.log10(mse)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


# -- the device --------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: torch.device) -> int | None:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def release(device: torch.device) -> None:
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def gib(n: int | None) -> float | None:
    return None if n is None else n / GiB


@contextlib.contextmanager
def tf32(enabled: bool | None) -> Iterator[None]:
    """TF32 for cuDNN convolutions and matrix products on (True) or off (False); None: as is."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    if enabled is not None:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtypes[precision]):
        yield


def precision_supported(precision: str, device: torch.device) -> str | None:
    """None when the engine runs ``precision`` on ``device``, else why not."""
    try:
        from rrtn_plugin.engine.device import check_precision
    except ImportError:
        return None if device.type == "cuda" or precision == "fp32" else "not on the CPU"
    from rrtn_plugin.errors import RRTNError

    try:
        check_precision(precision, device)
    except RRTNError as exc:
        return str(exc).split(";")[0]
    return None


def compile_network(model: RRTN) -> None:
    """``torch.compile`` the per-frame parts as ``--compile`` does."""
    try:
        from rrtn_plugin.engine.device import compile_models
    except ImportError:
        model.compile_steps()
        return
    compile_models(model)


def dynamo_counts() -> tuple[int, int]:
    """(graphs compiled, graph breaks) by torch.compile so far in this process."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"]), int(sum(counters["graph_break"].values()))
    except (ImportError, KeyError, TypeError):
        return 0, 0


def matmul_tflops(device: torch.device, precision: str, n: int, repeats: int) -> float:
    """Measured TFLOP/s of an n×n×n matrix product on random data (fp32: TF32 off, tf32: on)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    with tf32(precision == "tf32" if device.type == "cuda" else None):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
        seconds = time.perf_counter() - start
    return 2 * n**3 * repeats / seconds / 1e12


# -- running the engine ------------------------------------------------------------------------


@dataclass
class Run:
    """One timed pass of the engine over a clip."""

    frames: int
    seconds: float
    warmup_seconds: float
    peak: int | None
    budget: int
    window: int
    windows: int
    tiles: int
    tile: tuple[int, int]
    tiles_at_once: int
    padded: tuple[int, int]
    flow_hw: tuple[int, int] | None
    flow_seconds: float | None
    recompiled: int = 0
    """Graphs torch.compile made during the timed run (the warm-up should have made them)."""
    graph_breaks: int = 0
    """Graph breaks torch.compile met in the warm-up and the run (eager code in between)."""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def tile_side(self) -> int | None:
        """The tile side the engine chose (None: whole frames)."""
        return max(self.tile) if self.tiles > 1 else None


def measure_engine(
    model: RRTN,
    clip: torch.Tensor,
    options: RestoreOptions,
    device: torch.device,
    *,
    warmup_frames: int,
    first_frame: int = 0,
) -> Run:
    """Restore ``clip`` ((T, H, W) in [0, 1]) once through a :class:`ClipSession` with a fresh
    cache, after a warm-up on its first ``warmup_frames`` frames with the same tiles."""
    from rrtn_plugin.engine import ClipSession, WorkCache

    frames, height, width = clip.shape
    budget = options.memory_budget or int(0.8 * free_bytes(device))  # the engine's default
    options = replace(options, memory_budget=budget)

    def session(part: torch.Tensor, opts: RestoreOptions) -> ClipSession:
        s = ClipSession(
            first_frame=first_frame,
            num_frames=part.shape[0],
            height=height,
            width=width,
            first=model,
            options=opts,
            cache=WorkCache(device=device, device_budget=int(CACHE_SHARE * budget)),
            owner="bench",
        )
        for i, frame in enumerate(part):
            s.put_frame(first_frame + i, frame)
        return s

    before = dynamo_counts()
    main = session(clip, options)
    tiles = list(main.tiles)
    largest = max(((t.height, t.width) for t in tiles), key=lambda hw: hw[0] * hw[1])
    warmup = 0.0
    if warmup_frames:
        side = max(largest) if len(tiles) > 1 else 0
        warm = session(clip[:warmup_frames], replace(options, tile=side))
        start = time.perf_counter()
        warm.restore(warm.frame_numbers)
        sync(device)
        warmup = time.perf_counter() - start
        del warm
        release(device)
    graphs = dynamo_counts()[0]
    marks: dict[str, float] = {}

    def progress(event: Any) -> None:
        if event.stage == "flow":
            sync(device)
            marks["flow"] = time.perf_counter()

    sync(device)
    reset_peak(device)
    start = time.perf_counter()
    main.restore(main.frame_numbers, progress=progress)
    sync(device)
    seconds = time.perf_counter() - start
    run = Run(
        frames=frames,
        seconds=seconds,
        warmup_seconds=warmup,
        peak=peak_bytes(device),
        budget=budget,
        window=main.window_length,
        windows=len(main.windows),
        tiles=len(tiles),
        tile=largest,
        tiles_at_once=int(getattr(main, "tiles_at_once", 1)),
        padded=(int(getattr(main, "hp", height)), int(getattr(main, "wp", width))),
        flow_hw=getattr(main, "flow_hw", None),
        flow_seconds=marks["flow"] - start if "flow" in marks else None,
    )
    after = dynamo_counts()
    run.recompiled, run.graph_breaks = after[0] - graphs, after[1] - before[1]
    del main
    release(device)
    return run


def engine_options(
    device: torch.device, precision: str, frames: int, budget: int | None
) -> RestoreOptions:
    """One pass over one window of ``frames`` frames, as the benchmark runs it."""
    from rrtn_plugin.engine import RestoreOptions

    return RestoreOptions(
        window=frames,
        max_passes=1,
        stop_psnr=math.inf,
        device=str(device),
        precision=precision,
        memory_budget=budget,
    )


def error_text(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:160]}"


# -- the benchmark -----------------------------------------------------------------------------


class Variant(NamedTuple):
    size: str
    precision: str
    compiled: bool
    whole: bool = False


@dataclass
class Bench:
    """What the sections share: options, device, the network, and results so far."""

    args: argparse.Namespace
    device: torch.device
    started: float = field(default_factory=time.perf_counter)
    model: Any = None
    clips: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)
    runs: dict[Variant, Run | str] = field(default_factory=dict)
    run_4k: Run | str | None = None
    targets: list[tuple[str, str, str, str]] = field(default_factory=list)
    server: dict[str, float] = field(default_factory=dict)
    utilisation: dict[Variant, float] = field(default_factory=dict)
    took: dict[bool, float] = field(default_factory=dict)
    """Seconds the last eager (False) and compiled (True) variant took, warm-up included."""
    failed: list[str] = field(default_factory=list)

    @property
    def sizes(self) -> dict[str, tuple[int, int]]:
        return TINY_SIZES if self.args.tiny else SIZES

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def say(self, text: str) -> None:
        print(f"[{self.elapsed():6.1f} s] {text}", flush=True)

    def clip(self, size: str, frames: int) -> torch.Tensor:
        from rrtn_plugin.synth.samples import panning_clip

        width, height = self.sizes[size]
        key = (size, frames)
        if key not in self.clips:
            self.clips = {k: v for k, v in self.clips.items() if k[0] == size}  # keep one size
            self.clips[key] = panning_clip(frames, height, width, seed=5)
        return self.clips[key]


def tiny_config() -> RRTNConfig:
    from rrtn_plugin.model import RRTNConfig

    return RRTNConfig(
        num_feat=8,
        embed_dim=32,
        depths=(1,),
        num_heads=2,
        mlp_hidden=16,
        extract_blocks=1,
        reconstruct_blocks=1,
        flow_updates=2,
        flow_source="dis",
    )


def speed_model(bench: Bench) -> RRTN:
    """The network timed: ``--model``, else seeded random weights of the released size."""
    from rrtn_plugin.model import RRTNConfig, build_rrtn, load_rrtn

    if bench.args.model:
        model = load_rrtn(bench.args.model)
    else:
        torch.manual_seed(0)
        model = build_rrtn(tiny_config() if bench.args.tiny else RRTNConfig())
    return model.to(bench.device).eval()


# -- 1. correctness ----------------------------------------------------------------------------


def run_pass(model: RRTN, lq: torch.Tensor, precision: str, device: torch.device) -> torch.Tensor:
    """One recursion pass of the reference's arithmetic (flows, mask, restore), as fp32."""
    with torch.inference_mode(), autocast(precision, device):
        flows_forward, flows_backward = model.compute_flow(lq)
        mask = model.noise_mask(lq, flows_forward, flows_backward)
        out = model.restore(
            lq,
            noise_mask=mask,
            flows_forward=flows_forward[:, :-1],
            flows_backward=flows_backward[:, :-1],
        )
    return out.float()


def make_tiny_golden(folder: Path, model: RRTN) -> Path:
    """--tiny: a golden set in the reference's layout from the tiny network (the comparison
    code then runs as on the GPU, against itself)."""
    from rrtn_plugin.model import save_rrtn
    from rrtn_plugin.synth.samples import panning_clip

    folder.mkdir(parents=True, exist_ok=True)
    cpu = copy.deepcopy(model).cpu()
    save_rrtn(cpu, folder / "checkpoint.safetensors", metadata={"purpose": "bench/gpu.py --tiny"})
    lq = (panning_clip(3, 128, 128, seed=1) * 2 - 1)[None, :, None]
    out = run_pass(cpu, lq, "fp32", torch.device("cpu"))
    torch.save(lq, folder / "input.pt")
    torch.save(out, folder / "output.pt")
    torch.save(run_pass(cpu, out, "fp32", torch.device("cpu")), folder / "output_rec2.pt")
    return folder


def section_correctness(bench: Bench, table: Table) -> None:
    from rrtn_plugin.model import load_rrtn

    device, args = bench.device, bench.args
    folder = Path(args.golden)
    checkpoint = next(
        (
            folder / n
            for n in ("checkpoint.pth", "checkpoint.safetensors")
            if (folder / n).is_file()
        ),
        None,
    )
    if checkpoint is None:
        table.notes.append(
            f"{SKIPPED}: golden data not found at {folder} (../shared is absent; set "
            "RRTN_SHARED or --golden)"
        )
        return

    def load(name: str) -> torch.Tensor:
        return torch.load(folder / name, map_location="cpu", weights_only=True).to(device)

    model = load_rrtn(checkpoint, device=device)
    lq, expected1, expected2 = load("input.pt"), load("output.pt"), load("output_rec2.pt")
    table.notes.append(f"{checkpoint} on {device}, clip {tuple(lq.shape)}")
    if device.type == "cuda":
        run_pass(model, lq, "fp32", device)  # warm-up
    modes = [("fp32", None)]
    if device.type == "cuda":
        modes = [("fp32, TF32 as PyTorch's defaults", None), ("fp32, TF32 off", False)]
    bound = f"≤ {FP32_TOLERANCE:g}"
    for label, mode in modes:
        with tf32(mode):
            got = [run_pass(model, lq, "fp32", device), run_pass(model, expected1, "fp32", device)]
        errors = []
        for number, (out, expected) in enumerate(
            zip(got, (expected1, expected2), strict=True), start=1
        ):
            errors.append(max_abs(out, expected))
            verdict = OK if errors[-1] <= FP32_TOLERANCE else FAIL
            table.add(
                f"{label} vs reference",
                number,
                errors[-1],
                psnr(out, expected),
                None,
                bound,
                verdict,
            )
            bench.say(f"correctness {label} pass {number}: max |Δ| {errors[-1]:.2e} ({verdict})")
        worst = max(errors)  # NaN fails below: NaN <= x is False
        bench.targets.append(
            (
                f"golden clip, {label}, passes 1-2",
                f"max |Δ| {worst:.2e}",
                bound,
                OK if worst <= FP32_TOLERANCE else FAIL,
            )
        )
    if device.type == "cuda":
        table.notes.append(
            f"torch.backends.cudnn.allow_tf32 = {torch.backends.cudnn.allow_tf32}, "
            f"torch.backends.cuda.matmul.allow_tf32 = {torch.backends.cuda.matmul.allow_tf32}: "
            "the engine leaves them as they are, so its fp32 convolutions run in TF32 where "
            "cuDNN allows it"
        )

    passes = args.passes
    chain32 = [lq]
    for _ in range(passes):
        chain32.append(run_pass(model, chain32[-1], "fp32", device))
    for precision in [p for p in args.precisions if p != "fp32"]:
        why = precision_supported(precision, device)
        if why:
            table.add(f"{precision} vs fp32", None, None, None, None, "", f"{SKIPPED}: {why}")
            continue
        chained, psnrs = lq, []
        for number in range(1, passes + 1):
            own = run_pass(model, chain32[number - 1], precision, device)
            chained = run_pass(model, chained, precision, device)
            psnrs.append(psnr(own, chain32[number]))
            verdict = OK if psnrs[-1] >= PSNR_BOUND else FAIL
            table.add(
                f"{precision} vs fp32 (same input)",
                number,
                max_abs(own, chain32[number]),
                psnrs[-1],
                psnr(chained, chain32[number]),
                f"≥ {PSNR_BOUND:g} dB",
                verdict,
            )
        worst = math.nan if any(math.isnan(x) for x in psnrs) else min(psnrs)
        bench.targets.append(
            (
                f"{precision} per pass against fp32, passes 1-{passes}",
                f"worst {worst:.1f} dB",
                f"≥ {PSNR_BOUND:g} dB",
                OK if worst >= PSNR_BOUND else FAIL,
            )
        )
        bench.say(f"correctness {precision}: worst per-pass PSNR {worst:.1f} dB")
    table.notes.append(
        "PSNR on the [0, 1] scale; 'chained' runs every pass in the lower precision from the "
        "golden input, as the engine's recursion does, against the fp32 chain"
    )
    if any(r[-1] == FAIL for r in table.rows):
        bench.failed.append("correctness")


# -- 2. the network per pass -------------------------------------------------------------------


def variant_label(v: Variant) -> str:
    return f"{v.size} {v.precision} {'compiled' if v.compiled else 'eager'}" + (
        " whole frames" if v.whole else ""
    )


def measure_variant(bench: Bench, variant: Variant, model: RRTN) -> Run | str:
    """Time one variant; a failure (out of memory, a kernel missing) is its result."""
    args, device = bench.args, bench.device
    why = precision_supported(variant.precision, device)
    if why:
        return f"{SKIPPED}: {why}"
    budget = None if args.budget is None else int(args.budget * GiB)
    options = engine_options(device, variant.precision, args.frames, budget)
    if variant.whole:
        options = replace(options, tile=0)
    started = time.perf_counter()
    try:
        return measure_engine(
            model,
            bench.clip(variant.size, args.frames),
            options,
            device,
            warmup_frames=min(args.frames, 3 if args.quick else 8),
        )
    except Exception as exc:
        failure = error_text(exc)
        if not (args.tiny or variant.whole):
            traceback.print_exc()
    finally:
        bench.took[variant.compiled] = time.perf_counter() - started
    release(device)  # after the handler, which held the failed run's tensors
    if variant.whole:
        return f"whole frames do not fit: {failure}"
    return f"{FAIL}: {failure}"


def report_variant(bench: Bench, variant: Variant, run: Run | str) -> None:
    bench.runs[variant] = run
    if isinstance(run, str):
        bench.say(f"network {variant_label(variant)}: {run}")
        return
    peak = "–" if run.peak is None else f"{gib(run.peak):.1f} GiB"
    bench.say(
        f"network {variant_label(variant)}: {run.fps:.2f} frames/s, peak {peak}, "
        f"{run.tiles} tile(s), warm-up {run.warmup_seconds:.1f} s"
    )


def network_variants(bench: Bench, sizes: Sequence[str], *, compiled: bool) -> list[Variant]:
    precisions = sorted(bench.args.precisions, key=PRECISIONS.index)
    return [Variant(s, p, compiled) for s in sizes for p in precisions]


def over_time(bench: Bench, variant: Variant) -> bool:
    """Whether ``variant`` would end past ``--time-limit`` (judged by the last variant of its
    kind; a first compilation is guessed at 90 s); if so it is reported as skipped."""
    limit = bench.args.time_limit
    expected = bench.took.get(variant.compiled, 90.0 if variant.compiled else 0.0)
    if bench.elapsed() + expected <= limit:
        return False
    report_variant(bench, variant, f"{SKIPPED}: time limit ({limit:g} s, --time-limit)")
    return True


def section_network_eager(bench: Bench, sizes: Sequence[str], *, limited: bool) -> None:
    """The eager variants of ``sizes``; ``limited``: skipped once past the time limit."""
    for variant in network_variants(bench, sizes, compiled=False):
        if not (limited and over_time(bench, variant)):
            report_variant(bench, variant, measure_variant(bench, variant, bench.model))
    # Whole frames where the memory rule tiled: what the GPU really needs for the window.
    first = next(
        (v for v, r in bench.runs.items() if v.size == sizes[0] and isinstance(r, Run)), None
    )
    run = bench.runs.get(first) if first else None
    if first is not None and isinstance(run, Run) and run.tiles > 1 and not bench.args.quick:
        whole = first._replace(whole=True)
        if not over_time(bench, whole):
            report_variant(bench, whole, measure_variant(bench, whole, bench.model))


def section_network_compiled(bench: Bench) -> None:
    from torch import _dynamo

    for variant in network_variants(bench, bench.args.sizes, compiled=True):
        if over_time(bench, variant):
            continue
        if precision_supported(variant.precision, bench.device):
            report_variant(bench, variant, measure_variant(bench, variant, bench.model))
            continue
        _dynamo.reset()
        model = copy.deepcopy(bench.model)
        try:
            compile_network(model)  # marks the parts; they compile in the warm-up
        except Exception as exc:
            report_variant(bench, variant, f"{SKIPPED}: {error_text(exc)}")
            continue
        report_variant(bench, variant, measure_variant(bench, variant, model))
        del model
        _dynamo.reset()
        release(bench.device)


def network_table(bench: Bench) -> Table:
    args = bench.args
    table = Table(
        "network",
        f"The network per pass: one {args.frames}-frame window through the engine",
        [
            ("size", ""),
            ("precision", ""),
            ("compile", ""),
            ("frames/s", ".2f"),
            ("peak GiB", ".1f"),
            ("budget GiB", ".1f"),
            ("window", "d"),
            ("tiles", "d"),
            ("at once", "d"),
            ("largest tile", ""),
            ("flow %", ".0f"),
            ("warm-up s", ".1f"),
            ("target", ""),
            ("note", ""),
        ],
    )
    order = {s: i for i, s in enumerate(bench.sizes)}
    for v in sorted(
        bench.runs,
        key=lambda v: (order[v.size], v.whole, v.compiled, PRECISIONS.index(v.precision)),
    ):
        run = bench.runs[v]
        compile_label = "yes" if v.compiled else "no"
        if isinstance(run, str):
            table.add_some(
                {"size": v.size, "precision": v.precision, "compile": compile_label, "note": run}
            )
            continue
        target = ""
        if v.size == "2K" and v.precision == "bf16" and not v.whole:
            target = f"≥ {TARGET_2K_FPS:g}: " + (OK if run.fps >= TARGET_2K_FPS else MISS)
        notes = []
        if v.whole:
            notes.append("tile=0: whole frames, the budget's tiling overridden")
        if run.windows > 1:
            notes.append(f"window shortened to {run.window} ({run.windows} windows)")
        if run.recompiled:
            notes.append(f"{run.recompiled} graph(s) compiled in the timed run")
        if run.graph_breaks:
            notes.append(f"{run.graph_breaks} graph break(s)")
        table.add(
            v.size,
            v.precision,
            compile_label,
            run.fps,
            gib(run.peak),
            gib(run.budget),
            run.window,
            run.tiles,
            run.tiles_at_once,
            "whole" if run.tiles == 1 else f"{run.tile[1]}x{run.tile[0]}",
            None if run.flow_seconds is None else 100 * run.flow_seconds / run.seconds,
            run.warmup_seconds,
            target,
            "; ".join(notes),
        )
    if not table.rows:
        return table
    sizes = ", ".join(f"{s} {w}x{h}" for s, (w, h) in bench.sizes.items() if s in args.sizes)
    table.notes += [
        f"{sizes}; frames/s = frames / wall time of one pass (RAFT flows at flow_max_pixels, "
        "masks, propagation, reconstruction, results back on the host); peak = "
        "torch.cuda.max_memory_allocated during that pass",
        "budget: the engine's (80 % of free memory unless --budget); tiles: what it chose "
        "within it (the memory rule was measured on CPU; the whole-frames row shows what "
        "the GPU needs)",
        "flow %: share of the pass until the last RAFT batch finished; warm-up: a first run on "
        f"{min(args.frames, 3 if args.quick else 8)} frames with the same tiles (with compile: "
        "the compilation)",
    ]
    if args.tiny:
        table.notes.append(
            "--tiny: torch.compile's dynamo is disabled, so the compiled rows run eagerly "
            "(the plumbing only)"
        )
    return table


# -- 3. 4K through the tiles -------------------------------------------------------------------


def section_4k(bench: Bench, table: Table) -> None:
    args, device = bench.args, bench.device
    precision = args.precision_4k
    why = precision_supported(precision, device)
    if why:
        bench.run_4k = f"{SKIPPED}: {why}"
        table.notes.append(bench.run_4k)
        return
    budget = int(args.budget_4k * GiB)
    frames = args.frames_4k
    width, height = bench.sizes["4K"]
    options = engine_options(device, precision, frames, budget)
    run: Run | str
    try:
        run = measure_engine(
            bench.model,
            bench.clip("4K", frames),
            options,
            device,
            warmup_frames=0 if args.tiny else 3,
        )
    except Exception as exc:
        traceback.print_exc()
        run = f"{FAIL}: {error_text(exc)}"
    release(device)
    bench.run_4k = run
    if isinstance(run, str):
        table.add_some(
            {
                "size": f"{width}x{height}",
                "precision": precision,
                "budget GiB": args.budget_4k,
                "frames": frames,
                "verdict": run,
            }
        )
        bench.failed.append("4k")
        return
    shortened = run.window < frames or run.windows > 1
    over = run.peak is not None and run.peak > run.budget
    verdict = FAIL + ": window shortened" if shortened else OK
    if over and not shortened:
        verdict = f"{OK}, but peak over budget"
    if shortened:
        bench.failed.append("4k")
    table.add(
        f"{width}x{height}",
        precision,
        args.budget_4k,
        frames,
        run.window,
        run.windows,
        run.tiles,
        run.tiles_at_once,
        f"{run.tile[1]}x{run.tile[0]}" if run.tiles > 1 else "whole",
        run.fps,
        gib(run.peak),
        None if run.peak is None else run.peak / run.budget,
        run.warmup_seconds,
        verdict,
    )
    bench.say(f"4k: {run.fps:.2f} frames/s, {run.tiles} tiles, window {run.window} ({verdict})")
    table.notes.append(
        "peak / budget above 1 means the engine used more device memory than it was given "
        "(the budget bounds the network; the window's frames, flows, masks and spatial "
        "features are held at full size besides, and the cache takes up to "
        f"{CACHE_SHARE:.0%} of the budget on top)"
    )


# -- 4. the server end to end ------------------------------------------------------------------

LINEAR = "Linear Rec.709 (sRGB)"


def write_exr_clip(folder: Path, clip: torch.Tensor, first: int) -> list[Path]:
    """The clip as half-float RGB EXR files (zip), written in parallel."""
    import numpy as np
    import OpenImageIO as oiio

    frames, height, width = clip.shape

    def write(t: int) -> Path:
        path = folder / f"plate.{first + t:04d}.exr"
        spec = oiio.ImageSpec(width, height, 3, "half")
        spec.attribute("compression", "zip")
        out = oiio.ImageOutput.create("openexr")
        out.open(str(path), spec)
        out.write_image(np.repeat(clip[t].numpy()[..., None], 3, axis=2))
        out.close()
        return path

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(write, range(frames)))


def section_server(bench: Bench, table: Table) -> None:
    from rrtn_plugin.client.library import Client
    from rrtn_plugin.server.app import start_server
    from rrtn_plugin.server.service import RestoreService, ServedModel, ServiceLimits

    args, device = bench.args, bench.device
    precision, frames = args.server_precision, args.frames_server
    why = precision_supported(precision, device)
    if why:
        table.notes.append(f"{SKIPPED}: {why}")
        return
    size = args.sizes[0] if "2K" not in args.sizes else "2K"
    width, height = bench.sizes[size]
    budget = int((args.budget or 0.8 * free_bytes(device) / GiB) * GiB)
    step = frames - frames // 2
    first = -(-1001 // step) * step  # on the windows' grid: one window, as in the engine
    clip = bench.clip(size, frames)
    with tempfile.TemporaryDirectory(prefix="rrtn-bench-") as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        sources = write_exr_clip(folder / "in", clip, first)
        bytes_in = sum(p.stat().st_size for p in sources)
        bench.say(
            f"server: wrote {frames} EXR frames of {width}x{height} ({bytes_in / 1e6:.0f} MB)"
        )
        options = engine_options(device, precision, frames, budget)
        engine = measure_engine(
            bench.model,
            clip,
            options,
            device,
            warmup_frames=0 if args.tiny else 3,
            first_frame=first,
        )
        service = RestoreService(
            [ServedModel("bench", bench.model)],
            device=str(device),
            limits=ServiceLimits(memory_budget=budget, host_budget=16 * GiB),
        )
        address = (
            f"unix://{folder / 'rrtn.sock'}"
            if args.server_address == "unix"
            else args.server_address
        )
        running = start_server(service, address=address)
        if not address.startswith("unix:"):
            address = f"{address.rsplit(':', 1)[0]}:{running.port}"
        session_options = {
            "width": width,
            "height": height,
            "input_colorspace": LINEAR,
            "precision": precision,
            "max_passes": 1,
            "stop_psnr": math.inf,
        }
        try:
            with Client(address) as client:
                if not args.tiny:  # the colour and file code's first use, the channel
                    warm = client.open_session(
                        first_frame=first, last_frame=first + 2, window=3, **session_options
                    )
                    warm.restore_files(
                        first,
                        first + 2,
                        input=str(folder / "in/plate.####.exr"),
                        output=str(folder / "warm/plate.####.exr"),
                    )
                    warm.close()
                session = client.open_session(
                    first_frame=first,
                    last_frame=first + frames - 1,
                    window=frames,
                    **session_options,
                )
                events: list[tuple[float, int, str]] = []

                def progress(p: Any) -> None:
                    events.append((time.perf_counter(), p.pass_number, p.stage))

                sync(device)
                start = time.perf_counter()
                summary = session.restore_files(
                    first,
                    first + frames - 1,
                    input=str(folder / "in/plate.####.exr"),
                    output=str(folder / "out/plate.####.exr"),
                    progress=progress,
                )
                total = time.perf_counter() - start
                session.close()
        finally:
            running.stop()
        bytes_out = sum(p.stat().st_size for p in (folder / "out").glob("*.exr"))
    restored = [t for t, number, stage in events if number >= 1 and stage == "restore"]
    upload = total - summary.seconds
    download = total - (restored[-1] - start) if restored else math.nan
    overhead = 100 * (total - engine.seconds) / engine.seconds
    verdict = OK if overhead <= TARGET_OVERHEAD else MISS
    bench.server = {"overhead": overhead, "engine": engine.seconds, "server": total}
    table.add_some(
        {
            "path": "in-process engine (ClipSession)",
            "frames": frames,
            "seconds": engine.seconds,
            "frames/s": engine.fps,
        }
    )
    table.add(
        "server, bytes transport (EXR half in, EXR out)",
        frames,
        total,
        frames / total,
        overhead,
        bytes_in / 1e6,
        bytes_in / 1e6 / upload,
        bytes_out / 1e6,
        bytes_out / 1e6 / download,
        f"≤ {TARGET_OVERHEAD:g} %: {verdict}",
    )
    table.add_some(
        {
            "path": "  of which the server's restore (engine, render, encode)",
            "seconds": summary.seconds,
            "overhead %": 100 * (summary.seconds - engine.seconds) / engine.seconds,
        }
    )
    bench.say(
        f"server: {total:.2f} s against {engine.seconds:.2f} s in-process ({overhead:+.1f} %)"
    )
    table.notes += [
        f"{size} {width}x{height}, {precision}, one pass over one {frames}-frame window; server "
        f"on {'a unix socket' if address.startswith('unix:') else 'loopback TCP'} in this "
        "process; "
        + (
            "no warm-ups (--tiny)"
            if args.tiny
            else "the network, the server's colour and file code and the channel warmed up first"
        ),
        "in: send + decode + colour in, the call's time less the server's restore time "
        "(summary.seconds); out: render + encode + receive, from the last network event to "
        "the end of the call",
    ]


# -- 5. utilisation ----------------------------------------------------------------------------


@dataclass
class FlopCounts:
    restore_per_frame: dict[tuple[int, int], float]
    flow_fit: tuple[float, float]

    def per_frame(self, padded: tuple[int, int], flow_hw: tuple[int, int] | None) -> float:
        flow_pixels = (flow_hw[0] * flow_hw[1]) if flow_hw else padded[0] * padded[1]
        return self.restore_per_frame[padded] + flops_at(self.flow_fit, flow_pixels)


def deform_conv_flops(
    input_shape: Any, weight_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any
) -> int:
    """torchvision's deformable convolution: a convolution's multiply-adds."""
    return 2 * math.prod(out_shape) * math.prod(weight_shape[1:])


def count_flops(model: RRTN, device: torch.device, sizes: set[tuple[int, int]]) -> FlopCounts:
    """FLOPs per frame: the network after flow on the meta device at each padded size, RAFT
    on ``device`` at two small sizes (2 pairs a frame, as in a window), fitted."""
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {}
    with contextlib.suppress(AttributeError, RuntimeError):
        mapping[torch.ops.torchvision.deform_conv2d] = deform_conv_flops

    def counted(fn: Callable[[], object]) -> float:
        with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=mapping) as fc:
            fn()
        return float(fc.get_total_flops())

    meta = copy.deepcopy(model).to("meta")
    restore: dict[tuple[int, int], float] = {}
    for h, w in sizes:
        lq = torch.zeros(1, 3, 1, h, w, device="meta")
        flows = torch.zeros(1, 2, 2, h, w, device="meta")
        restore[(h, w)] = (
            counted(
                lambda lq=lq, flows=flows: meta.restore(
                    lq, noise_mask=lq, flows_forward=flows, flows_backward=flows
                )
            )
            / 3
        )
    pairs = [(1, 0), (2, 1), (0, 2), (0, 1), (1, 2), (2, 0)]
    samples = []
    for h, w in ((128, 160), (256, 320)):
        frames = torch.rand(3, 1, h, w, device=device) * 2 - 1
        samples.append((h * w, counted(lambda f=frames: model.estimate_pair_flows(f, pairs)) / 3))
    return FlopCounts(restore, fit_flops(samples))


def section_utilisation(bench: Bench, peaks: Table, table: Table) -> None:
    device, args = bench.device, bench.args
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    n, repeats = (256, 3) if args.tiny else ((4096, 10) if args.quick else (8192, 10))
    probe: dict[str, float] = {}
    for precision in ("bf16", "fp16", "tf32", "fp32"):
        if device.type == "cpu" and precision in ("fp16", "tf32"):
            continue
        probe[precision] = matmul_tflops(device, precision, n, repeats)
        sheet = peak_tflops(name, precision)
        peaks.add(
            precision,
            sheet[0] if sheet else "not in the table",
            sheet[1] if sheet else None,
            probe[precision],
            100 * probe[precision] / sheet[1] if sheet else None,
        )
    peaks.notes.append(
        f"{name}; datasheet: vendor's dense figures (leads); probe: {n}x{n}x{n} matrix "
        f"product on random data, {repeats} timed after 2 warm-ups"
    )
    runs: dict[Variant | str, Run] = {v: r for v, r in bench.runs.items() if isinstance(r, Run)}
    if isinstance(bench.run_4k, Run):
        runs["4K"] = bench.run_4k
    if not runs:
        table.notes.append(f"{SKIPPED}: no timed run to relate to the peak")
        return
    counts = count_flops(bench.model, device, {r.padded for r in runs.values()})
    convs_tf32 = device.type == "cuda" and torch.backends.cudnn.allow_tf32
    for key, run in runs.items():
        variant = key if isinstance(key, Variant) else Variant("4K", args.precision_4k, False)
        compute = "tf32" if variant.precision == "fp32" and convs_tf32 else variant.precision
        if compute not in probe:
            compute = "fp32"
        flops = counts.per_frame(run.padded, run.flow_hw)
        flow = flops_at(counts.flow_fit, math.prod(run.flow_hw or run.padded))
        sheet = peak_tflops(name, compute)
        achieved = flops * run.fps / 1e12
        share = utilisation(flops, run.fps, sheet[1]) if sheet else None
        if variant.size == "2K" and variant.precision == "bf16" and share is not None:
            bench.utilisation[variant] = share
        table.add(
            variant_label(variant),
            compute,
            flops / 1e12,
            100 * flow / flops if flops else None,
            run.fps,
            achieved,
            share,
            utilisation(flops, run.fps, probe[compute]),
        )
    table.notes += [
        "TFLOP/frame: the useful work of one frame of one pass (the network after flow at the "
        "padded frame size, RAFT at the flow size with 2 pairs a frame), counted by "
        "torch.utils.flop_counter (convolutions, matrix products, attention; the deformable "
        "convolution as its multiply-adds); tile overlaps are extra work not counted",
        "fp32 rows are held against the TF32 rate where cuDNN may use TF32 (PyTorch's default)",
    ]


# -- the summary and the run -------------------------------------------------------------------


def summary_table(bench: Bench) -> Table:
    table = Table(
        "summary", "Targets", [("target", ""), ("measured", ""), ("bound", ""), ("verdict", "")]
    )
    for row in bench.targets:
        table.add(*row)
    best = [
        (r.fps, v.compiled)
        for v, r in bench.runs.items()
        if v.size == "2K" and v.precision == "bf16" and not v.whole and isinstance(r, Run)
    ]
    if best:
        fps, compiled = max(best)
        table.add(
            "2K per pass, bf16 (H100/H200 class)",
            f"{fps:.2f} frames/s ({'compiled' if compiled else 'eager'})",
            f"≥ {TARGET_2K_FPS:g} frames/s",
            OK if fps >= TARGET_2K_FPS else MISS,
        )
    whole = bench.runs.get(Variant("2K", "bf16", False, True))
    if isinstance(whole, Run):
        peak = format_cell(gib(whole.peak), ".1f")
        measured = f"{whole.fps:.2f} frames/s, peak {peak} GiB"
        table.add("2K per pass, bf16, whole frames (tile=0)", measured, "the tiles' cost", "info")
    elif whole is not None:
        table.add("2K per pass, bf16, whole frames (tile=0)", whole, "the tiles' cost", "info")
    for variant, share in bench.utilisation.items():
        table.add(
            f"GPU utilisation, {variant_label(variant)}", f"{share:.1f} % of peak", "", "info"
        )
    if bench.run_4k is not None:
        run = bench.run_4k
        if isinstance(run, Run):
            shortened = run.window < bench.args.frames_4k or run.windows > 1
            tiles = f"{run.tiles} tiles of {run.tile_side} px" if run.tile_side else "whole"
            peak = "" if run.peak is None else f", peak {run.peak / GiB:.1f} GiB"
            table.add(
                "4K within the budget, whole window",
                f"{tiles}, window {run.window}, {run.fps:.2f} frames/s{peak}",
                f"no OOM, {bench.args.budget_4k:g} GiB",
                FAIL if shortened else OK,
            )
        else:
            table.add("4K within the budget, whole window", run, "no OOM", FAIL)
    if bench.server:
        overhead = bench.server["overhead"]
        table.add(
            "server overhead at 2K (bytes transport)",
            f"{overhead:+.1f} %",
            f"≤ {TARGET_OVERHEAD:g} %",
            OK if overhead <= TARGET_OVERHEAD else MISS,
        )
    if bench.failed:
        table.notes.append(f"failed: {', '.join(dict.fromkeys(bench.failed))}")
    return table


def describe(bench: Bench) -> dict[str, object]:
    device = bench.device
    meta: dict[str, object] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        meta["gpu"] = f"{props.name}, {props.total_memory / GiB:.1f} GiB"
        meta["cuda"] = torch.version.cuda
        meta["cudnn"] = torch.backends.cudnn.version()
        meta["tf32 (cudnn, matmul)"] = (
            f"{torch.backends.cudnn.allow_tf32}, {torch.backends.cuda.matmul.allow_tf32}"
        )
    else:
        meta["device"] = f"cpu, {torch.get_num_threads()} thread(s)"
    meta["torch"] = torch.__version__
    meta["c++ compiler (torch.compile)"] = shutil.which(os.environ.get("CXX") or "g++")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        meta["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    model = bench.model
    meta["model"] = (
        f"{bench.args.model or 'random weights'}: {sum(p.numel() for p in model.parameters())} "
        f"parameters, flow {model.config.flow_source}, {model.config.flow_updates} updates"
    )
    meta["mode"] = (
        "tiny (CPU plumbing check)"
        if bench.args.tiny
        else ("quick" if bench.args.quick else "full")
    )
    return meta


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-gpu"),
        help="folder for report.md and report.json (bench-gpu)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2K only, 10-frame windows, 2 passes, no compile",
    )
    parser.add_argument("--skip", default="", help=f"sections to skip, of {','.join(SECTIONS)}")
    parser.add_argument("--sizes", default=None, help="network sizes, of 2K,HD (both)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="bf16,fp16,fp32")
    parser.add_argument("--frames", type=int, default=None, help="frames per window (30)")
    parser.add_argument("--passes", type=int, default=None, help="recursion passes checked (4)")
    parser.add_argument("--no-compile", action="store_true", help="no torch.compile variants")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=280.0,
        help="seconds after which HD, compiled and whole-frame variants are skipped (280)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="GiB for the network section (the engine's 80 %% of free)",
    )
    parser.add_argument("--budget-4k", type=float, default=None, help="GiB for 4K (40)")
    parser.add_argument("--precision-4k", default=None, help="bf16")
    parser.add_argument("--server-precision", default=None, help="bf16")
    parser.add_argument(
        "--server-address",
        default="127.0.0.1:0",
        help="host:port (0: any free port) or 'unix' for a unix socket",
    )
    parser.add_argument("--model", type=Path, default=None, help="checkpoint to time")
    parser.add_argument("--golden", type=Path, default=GOLDEN, help=f"golden data ({GOLDEN})")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.skip = {s.strip().lower() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}: use {', '.join(SECTIONS)}")
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not args.precisions or set(args.precisions) - set(PRECISIONS):
        parser.error(f"--precisions takes {','.join(PRECISIONS)}")
    quick, tiny = args.quick, args.tiny
    if args.sizes is None:
        args.sizes = ["2K"] if quick or tiny else ["2K", "HD"]
    else:
        args.sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
        if not args.sizes or set(args.sizes) - {"2K", "HD"}:
            parser.error("--sizes takes 2K,HD (4K has its own section)")
    args.frames = args.frames or (3 if tiny else 10 if quick else 30)
    if args.frames < 3:
        parser.error("--frames must be at least 3")
    args.passes = args.passes or (1 if tiny else 2 if quick else 4)
    args.frames_4k = min(args.frames, 30)
    args.frames_server = min(args.frames, 30)
    args.budget_4k = args.budget_4k or (0.3 if tiny else 40.0)
    args.precision_4k = args.precision_4k or ("fp32" if tiny else "bf16")
    args.server_precision = args.server_precision or ("fp32" if tiny else "bf16")
    args.compile = not (args.no_compile or quick)
    return args


def empty_tables(args: argparse.Namespace, device: torch.device) -> dict[str, Table]:
    """The sections' tables, before any result."""
    correctness = Table(
        "correctness",
        f"Correctness: the golden clip on {device}",
        [
            ("check", ""),
            ("pass", "d"),
            ("max |Δ|", ".2e"),
            ("PSNR dB", ".1f"),
            ("chained PSNR dB", ".1f"),
            ("bound", ""),
            ("verdict", ""),
        ],
    )
    network = Table("network", "network", [])
    k4 = Table(
        "4k",
        f"4K through the tiles, {args.budget_4k:g} GiB budget",
        [
            ("size", ""),
            ("precision", ""),
            ("budget GiB", "g"),
            ("frames", "d"),
            ("window", "d"),
            ("windows", "d"),
            ("tiles", "d"),
            ("at once", "d"),
            ("largest tile", ""),
            ("frames/s", ".2f"),
            ("peak GiB", ".1f"),
            ("peak / budget", ".2f"),
            ("warm-up s", ".1f"),
            ("verdict", ""),
        ],
    )
    server = Table(
        "server",
        "The server end to end against the in-process engine",
        [
            ("path", ""),
            ("frames", "d"),
            ("seconds", ".2f"),
            ("frames/s", ".2f"),
            ("overhead %", "+.1f"),
            ("in MB", ".0f"),
            ("in MB/s", ".0f"),
            ("out MB", ".0f"),
            ("out MB/s", ".0f"),
            ("verdict", ""),
        ],
    )
    peaks = Table(
        "peak",
        "The GPU's peak: datasheet and a matrix-product probe",
        [
            ("precision", ""),
            ("datasheet GPU", ""),
            ("datasheet TFLOP/s", ".1f"),
            ("probe TFLOP/s", ".1f"),
            ("probe % of datasheet", ".0f"),
        ],
    )
    usage = Table(
        "utilisation",
        "What fraction of the GPU's peak the network reaches",
        [
            ("run", ""),
            ("rate", ""),
            ("TFLOP/frame", ".3f"),
            ("RAFT %", ".0f"),
            ("frames/s", ".2f"),
            ("TFLOP/s", ".1f"),
            ("% of datasheet", ".1f"),
            ("% of probe", ".1f"),
        ],
    )
    return {
        "correctness": correctness,
        "network": network,
        "4k": k4,
        "server": server,
        "peak": peaks,
        "utilisation": usage,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA, flush=True)
        return 2
    torch.set_grad_enabled(False)
    if args.tiny:
        from torch import _dynamo

        torch.set_num_threads(1)
        _dynamo.config.disable = True  # compile's plumbing only: compiling takes minutes
    tmp = tempfile.TemporaryDirectory(prefix="rrtn-bench-gpu-")
    bench = Bench(args, device)
    bench.model = speed_model(bench)
    if args.tiny and args.golden == GOLDEN:
        args.golden = make_tiny_golden(Path(tmp.name) / "golden", bench.model)
    meta = describe(bench)
    for key, value in meta.items():
        print(f"{key}: {format_cell(value)}")

    tables = empty_tables(args, device)
    correctness, network, k4, server = (
        tables[k] for k in ("correctness", "network", "4k", "server")
    )
    peaks, usage = tables["peak"], tables["utilisation"]

    def section(name: str, table: Table, work: Callable[[], None]) -> None:
        if name.split("-")[0] in args.skip:
            note = f"{SKIPPED} (--skip {name.split('-')[0]})"
            table.notes += [] if note in table.notes else [note]
            return
        bench.say(f"{name} ...")
        start = time.perf_counter()
        try:
            work()
        except Exception as exc:
            traceback.print_exc()
            table.notes.append(f"{FAIL}: the section broke: {error_text(exc)}")
            bench.failed.append(name)
            release(device)
        took = time.perf_counter() - start
        table.seconds = (table.seconds or 0.0) + took
        bench.say(f"{name} done in {took:.1f} s")

    first, *others = args.sizes
    section("correctness", correctness, lambda: section_correctness(bench, correctness))
    section("network", network, lambda: section_network_eager(bench, [first], limited=False))
    section("4k", k4, lambda: section_4k(bench, k4))
    section("server", server, lambda: section_server(bench, server))
    if others:
        section("network", network, lambda: section_network_eager(bench, others, limited=True))
    if args.compile:
        section("network-compiled", network, lambda: section_network_compiled(bench))
    section("utilisation", usage, lambda: section_utilisation(bench, peaks, usage))
    if "utilisation" in args.skip:
        peaks.notes.append(f"{SKIPPED} (--skip utilisation)")

    built = network_table(bench)
    built.seconds, built.notes = network.seconds, built.notes + network.notes
    if not args.compile and "network" not in args.skip:
        built.notes.append("torch.compile variants not run (--no-compile or --quick)")
    report = [summary_table(bench), correctness, built, k4, server, peaks, usage]
    print()
    for table in report:
        print(table.text() + "\n")
    md, js = write_report(args.out, meta | {"seconds": round(bench.elapsed(), 1)}, report)
    print(f"wrote {md} and {js} ({bench.elapsed():.0f} s in all)")
    tmp.cleanup()
    return 1 if bench.failed else 0


if __name__ == "__main__":
    sys.exit(main())

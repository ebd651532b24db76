"""The product on a CUDA GPU, and the parts of ``bench/gpu.py`` a CPU can check.

Tests marked ``cuda`` (``pytest -m cuda`` runs only them) skip without a CUDA GPU: the golden
clip on the GPU against the reference's tensors, a tiled 4K window through the engine, bf16 and
fp16 through the engine against fp32, and a server session computing on the GPU. The others run
anywhere: the benchmark's one-line exit without CUDA, a ``--tiny`` CPU run of the whole script
(so that its GPU code paths have executed at least once), and its helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from rrtn_plugin.engine import ClipSession, RestoreOptions, WorkCache, restore_clip
from rrtn_plugin.model import RRTN, load_rrtn
from rrtn_plugin.synth.samples import panning_clip

REPO = Path(__file__).resolve().parents[1]
GPU_BENCH = REPO / "bench" / "gpu.py"
WHOLE = "tile=0: whole frames, the budget's tiling overridden"
NO_CUDA = "bench/gpu.py needs a CUDA GPU: torch.cuda.is_available() is False on this machine"
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine",
)


@contextlib.contextmanager
def tf32_off() -> Iterator[None]:
    """fp32 that means fp32: no TF32 in cuDNN convolutions (PyTorch's default) or matmuls."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a.float().cpu() - b.float().cpu()).abs().max().item()


def psnr01(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of frames in [0, 1]."""
    mse = (a.float() - b.float()).square().mean().item()
    return math.inf if mse == 0 else -10 * math.log10(mse)


# -- on the GPU --------------------------------------------------------------------------------


@pytest.mark.cuda
@needs_cuda
def test_golden_clip_on_cuda_matches_the_reference(golden_dir: Path) -> None:
    def load(name: str) -> torch.Tensor:
        return torch.load(golden_dir / name, map_location="cpu", weights_only=True)

    lq, output, output_rec2 = load("input.pt"), load("output.pt"), load("output_rec2.pt")
    model = load_rrtn(golden_dir / "checkpoint.pth", device="cuda")
    with tf32_off(), torch.inference_mode():
        first = model(lq.cuda())
        second = model(output.cuda())  # the reference ran its model again on output.pt
    assert max_err(first, output) <= 1e-3
    assert max_err(second, output_rec2) <= 1e-3
    # As the engine runs fp32 on a GPU: cuDNN may use TF32 (PyTorch's default), 10-bit
    # mantissas in the convolutions, so a looser bound; bench/gpu.py reports both figures.
    with torch.inference_mode():
        default = model(lq.cuda())
    assert max_err(default, output) <= 1e-2
    with tf32_off():
        result = restore_clip(
            (lq[0, :, 0] + 1) / 2, first=model, options=RestoreOptions(max_passes=1, device="cuda")
        )
    assert result.windows == [(0, 6)]
    assert max_err(result.frames * 2 - 1, output[0, :, 0]) <= 1e-3


@pytest.mark.cuda
@needs_cuda
def test_a_4k_window_runs_in_tiles_within_its_budget_on_cuda(small_model: RRTN) -> None:
    model = copy.deepcopy(small_model)  # the engine moves its network to the device
    frames, height, width, budget = 6, 3112, 4096, 8 << 30
    clip = panning_clip(frames, height, width, seed=2)
    device = torch.device("cuda")
    options = RestoreOptions(
        window=frames, max_passes=1, stop_psnr=math.inf, device="cuda", memory_budget=budget
    )
    session = ClipSession(
        first_frame=0,
        num_frames=frames,
        height=height,
        width=width,
        first=model,
        options=options,
        cache=WorkCache(device=device, device_budget=budget // 4),
    )
    for t in range(frames):
        session.put_frame(t, clip[t])
    assert len(session.tiles) > 1
    assert session.window_length == frames
    assert len(session.windows) == 1
    torch.cuda.reset_peak_memory_stats(device)
    result = session.restore(range(frames))
    peak = torch.cuda.max_memory_allocated(device)
    restored = torch.stack([result.frames[t] for t in range(frames)])
    assert restored.shape == (frames, height, width)
    assert torch.isfinite(restored).all()
    # The budget bounds the network's work; the cache may hold a quarter more.
    assert peak <= 1.25 * budget, f"peak {peak / 2**30:.2f} GiB, budget {budget / 2**30:g} GiB"


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_through_the_engine_on_cuda(small_model: RRTN, precision: str) -> None:
    model = copy.deepcopy(small_model)
    clip = panning_clip(8, 256, 320, seed=4)
    settings = {"window": 8, "max_passes": 2, "stop_psnr": math.inf, "device": "cuda"}
    reference = restore_clip(clip, first=model, options=RestoreOptions(**settings))
    lower = restore_clip(clip, first=model, options=RestoreOptions(**settings, precision=precision))
    assert torch.isfinite(lower.frames).all()
    assert len(lower.pass_psnr) == 2
    quality = psnr01(lower.frames, reference.frames)
    assert quality >= 40.0, f"{precision} after 2 passes: {quality:.1f} dB against fp32"


@pytest.mark.cuda
@needs_cuda
def test_a_server_session_on_cuda_gives_the_in_process_frames(
    small_model: RRTN, tmp_path: Path
) -> None:
    from helpers import exr_sequence

    from rrtn_plugin.client.library import Client
    from rrtn_plugin.frames.aovs import Aov
    from rrtn_plugin.frames.image import read_pixels
    from rrtn_plugin.frames.restore import JobSettings, restore_sequence
    from rrtn_plugin.server.app import start_server
    from rrtn_plugin.server.service import RestoreService, ServedModel, ServiceLimits

    model = copy.deepcopy(small_model)
    exr_sequence(tmp_path / "in", range(1001, 1011), size=(160, 128), seed=5)
    settings = {"window": 6, "overlap": 3, "max_passes": 2, "stop_psnr": 100.0}
    budget = 1 << 30  # the same on both sides, so both batch the work alike
    restore_sequence(
        tmp_path / "in" / "plate.####.exr",
        tmp_path / "local" / "plate.####.exr",
        first=model,
        settings=JobSettings(
            frames=list(range(1003, 1008)),
            handles=10,
            input_colorspace="lin_rec709",
            aovs=(Aov.MASK,),
            restore=RestoreOptions(device="cuda", memory_budget=budget, **settings),
        ),
    )  # type: ignore[arg-type]
    service = RestoreService(
        [ServedModel("small", model)],
        device="cuda",
        limits=ServiceLimits(memory_budget=budget, host_budget=budget),
    )
    running = start_server(service, address="127.0.0.1:0")
    frames = {f: read_pixels(tmp_path / f"in/plate.{f}.exr")[1] for f in range(1001, 1011)}
    try:
        with Client(f"127.0.0.1:{running.port}") as client:
            session = client.open_session(
                first_frame=1001,
                last_frame=1010,
                width=160,
                height=128,
                input_colorspace="lin_rec709",
                aovs=["mask"],
                **settings,  # type: ignore[arg-type]
            )
            restored, channels, _ = session.restore_arrays(
                1003, 1007, frames, channels=("R", "G", "B", "A")
            )
            session.close()
    finally:
        running.stop()
    assert sorted(restored) == list(range(1003, 1008))
    for f in range(1003, 1008):
        info, expected = read_pixels(tmp_path / "local" / f"plate.{f}.exr")
        by_name = restored[f][..., [channels.index(c) for c in info.channels]]
        # the file stores the picture as half floats
        assert np.allclose(by_name, expected, rtol=2**-10, atol=1e-4), f


# -- bench/gpu.py on the CPU -------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """bench/gpu.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("bench_gpu", GPU_BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_gpu_benchmark_without_cuda_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a machine with one
    done = subprocess.run(
        [sys.executable, str(GPU_BENCH)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    assert (done.stdout + done.stderr).strip().splitlines() == [NO_CUDA]
    assert not (tmp_path / "bench-gpu").exists()


def test_the_gpu_benchmark_runs_whole_on_the_cpu_with_a_tiny_network(tmp_path: Path) -> None:
    """``--device cpu --tiny``: every section's code, with a tiny network at tiny sizes (a
    budget that makes the engine tile them, so the whole-frames row runs too)."""
    out = tmp_path / "report"
    command = ["--device", "cpu", "--tiny", "--budget", "0.25", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(GPU_BENCH), *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "== Targets ==" in done.stdout
    tables = json.loads((out / "report.json").read_text())["tables"]
    assert list(tables) == [
        "summary",
        "correctness",
        "network",
        "4k",
        "server",
        "peak",
        "utilisation",
    ]
    fp32 = [r for r in tables["correctness"]["rows"] if r["check"].startswith("fp32")]
    assert [(r["pass"], r["verdict"]) for r in fp32] == [(1, "ok"), (2, "ok")]
    network = {(r["precision"], r["compile"], r["note"]): r for r in tables["network"]["rows"]}
    eager, whole = network[("fp32", "no", "")], network[("fp32", "no", WHOLE)]
    assert eager["frames/s"] > 0
    assert network[("fp32", "yes", "")]["frames/s"] > 0
    assert eager["window"] == 3
    assert eager["tiles"] == 2
    assert whole["tiles"] == 1
    assert whole["largest tile"] == "whole"
    skipped = [r["note"] for r in tables["network"]["rows"] if r["precision"] == "fp16"]
    assert len(skipped) == 2  # eager and compiled: the engine refuses fp16 on a CPU
    assert all(note.startswith("skipped: ") and "fp16" in note for note in skipped)
    (k4,) = tables["4k"]["rows"]
    assert k4["tiles"] > 1
    assert k4["window"] == k4["frames"]
    assert k4["windows"] == 1
    assert k4["verdict"] == "ok"
    engine, server, on_server = tables["server"]["rows"]
    assert engine["seconds"] > 0
    assert server["seconds"] > on_server["seconds"] > 0
    assert server["in MB/s"] > 0
    assert server["out MB/s"] > 0
    assert isinstance(server["overhead %"], float)
    assert [r["run"] for r in tables["utilisation"]["rows"]] == [
        "2K fp32 eager",
        "2K fp32 eager whole frames",
        "2K fp32 compiled",
        "4K fp32 eager",
    ]
    assert all(r["TFLOP/frame"] > 0 for r in tables["utilisation"]["rows"])
    targets = [r["target"] for r in tables["summary"]["rows"]]
    assert targets[0].startswith("golden clip, fp32")
    assert "4K within the budget, whole window" in targets
    markdown = (out / "report.md").read_text()
    assert "### Targets" in markdown
    assert "| target | measured | bound | verdict |" in markdown


def test_flops_scale_as_a_line_plus_a_square(bench: ModuleType) -> None:
    a, b = 3.6e6, 2.0e-3
    samples = [(p, a * p + b * p * p) for p in (128 * 160, 256 * 320)]
    fit = bench.fit_flops(samples)
    assert fit == pytest.approx((a, b), rel=1e-9)
    assert bench.flops_at(fit, 1 << 20) == pytest.approx(a * 2**20 + b * 2**40, rel=1e-9)
    linear = bench.fit_flops([(100, 1.8e8), (400, 7.2e8)])
    assert linear == pytest.approx((1.8e6, 0.0), abs=1e-9)
    with pytest.raises(ValueError, match="two different"):
        bench.fit_flops([(100, 1.0), (100, 2.0)])
    # 10 TFLOP a frame at 24 frames/s on a 989 TFLOP/s card
    assert bench.utilisation(10e12, 24.0, 989.0) == pytest.approx(100 * 240 / 989)


def test_the_peak_table_finds_gpus_by_their_names(bench: ModuleType) -> None:
    peak = bench.peak_tflops
    assert peak("NVIDIA H100 80GB HBM3", "bf16") == ("H100 SXM", 989)
    assert peak("NVIDIA H100 PCIe", "bf16") == ("H100 PCIe", 756)
    assert peak("NVIDIA H100 NVL", "fp16") == ("H100 NVL", 835)
    assert peak("NVIDIA H200", "tf32") == ("H200 SXM", 494)
    assert peak("NVIDIA GH200 480GB", "fp32") == ("GH200", 67)
    assert peak("NVIDIA A100-SXM4-80GB", "fp32") == ("A100", 19.5)
    assert peak("NVIDIA A100 80GB PCIe", "bf16") == ("A100", 312)
    assert peak("NVIDIA L40S", "bf16") == ("L40S", 362)
    assert peak("NVIDIA L40", "bf16") == ("L40", 181)
    assert peak("NVIDIA L4", "bf16") == ("L4", 121)
    assert peak("NVIDIA GeForce RTX 4090", "bf16") == ("RTX 4090", 165.2)
    assert peak("NVIDIA A10G", "bf16") is None  # not the A10: its rates are not published
    assert peak("Tesla T4", "fp32") is None
    with pytest.raises(ValueError, match="precision"):
        peak("NVIDIA H200", "fp8")


def test_report_tables_as_text_markdown_and_json(bench: ModuleType, tmp_path: Path) -> None:
    table = bench.Table(
        "speed", "Speed", [("size", ""), ("frames/s", ".2f"), ("PSNR dB", ".1f"), ("note", "")]
    )
    table.add("2K", 25.456, math.inf, "a|b")
    table.add("HD", None, math.nan, "")
    table.add_some({"size": "4K", "note": "skipped"})
    table.notes.append("one note")
    table.seconds = 1.25
    with pytest.raises(ValueError, match="columns"):
        table.add("too", "few")
    with pytest.raises(ValueError, match="no column"):
        table.add_some({"fps": 1.0})

    text = table.text().splitlines()
    assert text[0] == "== Speed (1.2 s) =="
    assert text[1].split() == ["size", "frames/s", "PSNR", "dB", "note"]
    assert text[3].split() == ["2K", "25.46", "∞", "a|b"]
    assert text[4].split() == ["HD", "–", "–"]
    assert text[-1] == "  * one note"
    # numbers right-aligned under their heading, text left-aligned
    assert text[1].index("frames/s") + len("frames/s") == text[3].index("25.46") + len("25.46")
    assert text[1].index("note") == text[3].index("a|b")

    markdown = table.markdown().splitlines()
    assert markdown[0] == "### Speed (1.2 s)"
    assert markdown[2] == "| size | frames/s | PSNR dB | note |"
    assert markdown[3] == "| --- | ---: | ---: | --- |"
    assert markdown[4] == "| 2K | 25.46 | ∞ | a\\|b |"
    assert markdown[6] == "| 4K | – | – | skipped |"
    assert markdown[-1] == "- one note"

    md, js = bench.write_report(tmp_path / "out", {"gpu": "test", "seconds": 2.0}, [table])
    assert md.read_text().startswith("# rrtn-plugin GPU benchmark\n\n- gpu: test\n")
    report = json.loads(js.read_text())
    assert report["meta"] == {"gpu": "test", "seconds": 2.0}
    rows = report["tables"]["speed"]["rows"]
    assert rows[0] == {"size": "2K", "frames/s": 25.456, "PSNR dB": "inf", "note": "a|b"}
    assert rows[1]["frames/s"] is None
    assert rows[1]["PSNR dB"] is None
    assert report["tables"]["speed"]["seconds"] == 1.25


def test_variants_that_would_end_past_the_time_limit_are_skipped(bench: ModuleType) -> None:
    args = argparse.Namespace(time_limit=100.0, tiny=True)
    state = bench.Bench(args, torch.device("cpu"))
    state.started -= 50  # 50 s in
    eager = bench.Variant("HD", "bf16", False)
    compiled = bench.Variant("2K", "bf16", True)
    assert not bench.over_time(state, eager)
    assert bench.over_time(state, compiled)  # a first compilation is guessed at 90 s
    assert state.runs[compiled] == "skipped: time limit (100 s, --time-limit)"
    state.took[True] = 40.0  # the last compiled variant took 40 s
    assert not bench.over_time(state, compiled)
    state.took[False] = 60.0
    assert bench.over_time(state, eager)


def test_psnr_and_differences_of_frames_in_minus_one_to_one(bench: ModuleType) -> None:
    a = torch.zeros(1, 3, 1, 8, 8)
    assert bench.psnr(a, a) == math.inf
    b = a + 0.2  # 0.1 on the [0, 1] scale: 20 dB
    assert bench.psnr(a, b) == pytest.approx(20.0)
    assert bench.max_abs(a, b) == pytest.approx(0.2)
    assert math.isnan(bench.psnr(a, torch.full_like(a, math.nan)))

"""Choosing the compute device and numeric precision, and readying the host for the network."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import shutil
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from rrtn_plugin.errors import RRTNError
from rrtn_plugin.options import PRECISIONS as PRECISION_NAMES

if TYPE_CHECKING:
    from rrtn_plugin.model import RRTN

PRECISIONS = dict(zip(PRECISION_NAMES, (torch.float32, torch.bfloat16, torch.float16), strict=True))


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → the first CUDA device when present, else the CPU; other names are checked."""
    if isinstance(name, torch.device):
        device = name
    elif name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise RRTNError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RRTNError(f"device '{name}' asked for, but this machine has no usable CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RRTNError(f"device '{name}' does not exist: {torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu":
        raise RRTNError(f"device '{name}' is not supported (use auto, cpu, cuda or cuda:N)")
    return device


def check_precision(precision: str, device: torch.device) -> None:
    """fp32 anywhere; bf16 on CUDA and on CPUs whose oneDNN has bf16 kernels (AVX-512; faster
    than fp32 with AVX512-BF16 or AMX); fp16 only on CUDA. Elsewhere PyTorch falls back to
    reference kernels, far slower than fp32. Error against fp32 per pass, and the times:
    ``bench/precision.py``."""
    if precision not in PRECISIONS:
        raise RRTNError(f"unknown precision '{precision}' (use {', '.join(PRECISIONS)})")
    if precision == "fp32" or device.type == "cuda":
        return
    if precision == "fp16":
        raise RRTNError(
            f"precision fp16 needs a CUDA device (CPUs emulate it, very slowly); "
            f"on {device} use fp32, or bf16 on CPUs with AVX-512"
        )
    if not cpu_has_bf16():
        raise RRTNError(
            "precision bf16 on the CPU needs AVX-512 (oneDNN's bf16 kernels); "
            "this CPU would run it tens of times slower than fp32: use fp32"
        )


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 convolutions and matrix products on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Run the network in ``precision`` (autocast on ``device``); a no-op for fp32."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=PRECISIONS[precision]):
        yield


def available_memory(device: torch.device) -> int:
    """Bytes free for work on ``device`` right now (free GPU memory, or available host RAM)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


MMAP_THRESHOLD = 32 << 20
"""glibc's largest allowed mmap threshold: blocks up to this size are served from the heap."""
TRIM_THRESHOLD = 1 << 30
"""Freed heap memory kept for reuse before glibc returns it to the system."""


@functools.cache
def tune_host_allocator() -> bool:
    """Make glibc's malloc keep and reuse the network's large temporary tensors.

    By default glibc maps each large block afresh and returns it on free, so every feature map
    of a forward costs page faults on first touch, a large part of the network's time on CPU
    (``bench/speed.py --default-allocator`` measures it). With blocks up to 32 MiB served from a
    heap that is not trimmed below 1 GiB, the pages are faulted once and reused. The process
    then keeps up to 1 GiB of freed memory. Applies to the whole process, once; returns whether
    it could (glibc on Linux only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(
        mallopt(m_mmap_threshold, MMAP_THRESHOLD) and mallopt(m_trim_threshold, TRIM_THRESHOLD)
    )


def compile_models(*models: RRTN | None) -> None:
    """``torch.compile`` the per-frame parts of each model (:meth:`RRTN.compile_steps`).

    Compilation itself happens at the first window of each size. Its CPU code and GPU kernel
    launchers are built with a C++ compiler (``$CXX``, else ``g++``; ``clang++`` on macOS), so one
    must be installed.

    Raises:
        RRTNError: no C++ compiler found.
    """
    compiler = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
    if shutil.which(compiler) is None:
        raise RRTNError(
            f"--compile needs a C++ compiler for torch.compile and {compiler!r} was "
            "not found: install one (e.g. g++), set $CXX, or run without --compile"
        )
    for model in dict.fromkeys(m for m in models if m is not None):
        model.compile_steps()

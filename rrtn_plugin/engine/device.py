"""Choosing the compute device and numeric precision."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from rrtn_plugin.errors import RRTNError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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
    """fp32 anywhere; bf16 and fp16 only on CUDA, where they are fast."""
    if precision not in PRECISIONS:
        raise RRTNError(f"unknown precision '{precision}' (use {', '.join(PRECISIONS)})")
    if precision != "fp32" and device.type != "cuda":
        raise RRTNError(f"precision {precision} needs a CUDA device; on {device} use fp32")


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Run the network in ``precision`` (autocast) on CUDA; a no-op for fp32."""
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

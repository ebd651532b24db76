"""Measures the engine decides with: PSNR on 8-bit frames, as the reference computes it."""

from __future__ import annotations

import math

import torch


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] values clamped and rounded to the 8-bit grid (still in [0, 1])."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def psnr_8bit(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over frames of PSNR between two (T, …) clips in [0, 1], each rounded to 8 bits."""
    qa, qb = quantize_8bit(a).double(), quantize_8bit(b).double()
    mse = ((qa - qb) ** 2).flatten(1).mean(dim=1)
    per_frame = torch.where(
        mse == 0, torch.full_like(mse, math.inf), 20 * torch.log10(1.0 / mse.sqrt())
    )
    return float(per_frame.mean())

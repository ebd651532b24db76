"""Feature-map layout for convolutions: channels-last on CPU, concatenations written into it."""

from __future__ import annotations

import torch

from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.layout import cat_for_convolution, for_convolution


def test_cat_for_convolution_is_torch_cat_laid_out_channels_last() -> None:
    torch.manual_seed(6)
    maps = [
        torch.randn(2, 3, 5, 7),
        torch.randn(2, 4, 5, 7).contiguous(memory_format=torch.channels_last),
        torch.randn(2, 1, 5, 7).to(torch.bfloat16),
    ]
    out = cat_for_convolution(maps)
    assert out.dtype == torch.float32  # promoted as torch.cat promotes
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, torch.cat(maps, dim=1))
    assert for_convolution(maps[0]).is_contiguous(memory_format=torch.channels_last)


def test_cat_for_convolution_keeps_gradients() -> None:
    first = torch.randn(1, 2, 4, 4, requires_grad=True)
    second = torch.randn(1, 3, 4, 4)
    with torch.enable_grad():
        out = cat_for_convolution([first, second])
        assert out.is_contiguous(memory_format=torch.channels_last)
        (grad,) = torch.autograd.grad((out[:, :2] * 3).sum(), first)
    assert torch.equal(grad, torch.full_like(first, 3.0))


def test_layout_switch_gives_channels_first() -> None:
    out = cat_for_convolution(
        [torch.randn(1, 2, 4, 4), torch.randn(1, 3, 4, 4)],
        kernels=Kernels(channels_last_on_cpu=False),
    )
    assert out.is_contiguous()
    assert not out.is_contiguous(memory_format=torch.channels_last)

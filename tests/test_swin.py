"""Window attention: each kernel against the reference's step-by-step arithmetic."""

from __future__ import annotations

import pytest
import torch

from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.swin import SwinBlock, TokenLinear, WindowAttention, shifted_window_mask


def step_by_step(attn: WindowAttention, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The reference's window attention, written out independently of the module's code."""
    bw, n, c = x.shape
    heads = attn.num_heads
    q, k, v = attn.qkv(x).reshape(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    table = attn.relative_position_bias_table[attn.relative_position_index.reshape(-1)]
    logits = logits + table.reshape(n, n, heads).permute(2, 0, 1)
    if mask is not None:
        windows = mask.shape[0]
        logits = (logits.view(bw // windows, windows, heads, n, n) + mask[None, :, None]).view(
            bw, heads, n, n
        )
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(bw, n, c)
    return attn.proj(out)


@pytest.mark.parametrize("kernel", ["baddbmm", "sdpa", "reference"])
@pytest.mark.parametrize("shifted", [False, True])
@torch.no_grad()
def test_attention_kernels_equal_the_reference_arithmetic(shifted: bool, kernel: str) -> None:
    torch.manual_seed(3)
    attn = WindowAttention(32, window_size=4, num_heads=4)
    torch.nn.init.normal_(attn.relative_position_bias_table, std=1.0)
    mask = shifted_window_mask(8, 12, window_size=4, shift=2) if shifted else None
    x = torch.randn(2 * 6, 16, 32)  # two images of 2 × 3 windows
    expected = step_by_step(attn, x, mask)
    assert attn.kernels.attention == "auto"
    automatic = attn(x, attn.attention_bias(mask))
    attn.set_kernels(Kernels(attention=kernel))
    out = attn(x, attn.attention_bias(mask))
    assert (out - expected).abs().max().item() < 2e-6
    assert expected.abs().mean().item() > 0.1
    if kernel == "baddbmm":  # what "auto" runs on CPU
        assert torch.equal(automatic, out)


def test_attention_kernel_gradients_agree() -> None:
    torch.manual_seed(5)
    attn = WindowAttention(16, window_size=4, num_heads=2)
    torch.nn.init.normal_(attn.relative_position_bias_table, std=1.0)
    x = torch.randn(2 * 4, 16, 16)
    mask = shifted_window_mask(8, 8, window_size=4, shift=2)
    grads = {}
    for kernel in ("baddbmm", "reference"):
        attn.zero_grad()
        attn.set_kernels(Kernels(attention=kernel))
        with torch.enable_grad():  # other tests' fixtures may have turned it off
            attn(x, attn.attention_bias(mask)).square().sum().backward()
        grads[kernel] = attn.relative_position_bias_table.grad.clone()
    assert grads["reference"].abs().max().item() > 1e-2
    assert torch.allclose(grads["baddbmm"], grads["reference"], atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_shift_mask_keeps_attention_inside_each_image_region() -> None:
    torch.manual_seed(4)
    block = SwinBlock(8, num_heads=2, window_size=4, shift=2, mlp_hidden=16)
    x = torch.randn(1, 8 * 8, 8)
    y = block(x, (8, 8))
    # Change a pixel of the wrapped-around bottom-right band: after the cyclic shift it shares a
    # window with the top-left region, but the mask must keep that window's other regions blind.
    changed = x.clone().view(1, 8, 8, 8)
    changed[0, 7, 7] += 10.0 * torch.randn(8)  # not constant: LayerNorm would remove it
    z = block(changed.view(1, 64, 8), (8, 8)).view(1, 8, 8, 8)
    moved = (z - y.view(1, 8, 8, 8)).abs().amax(dim=-1)[0] > 1e-6
    assert moved[7, 7]
    assert not moved[0, 0]  # same shifted window, different region
    assert moved[6, 6]  # same region and window


def test_attention_rejects_a_mask_that_does_not_divide_the_windows() -> None:
    attn = WindowAttention(8, window_size=2, num_heads=2)
    with pytest.raises(ValueError, match="do not divide"):
        attn(torch.randn(5, 4, 8), attn.attention_bias(torch.zeros(2, 4, 4)))


@pytest.mark.parametrize("shape", [(5120, 64), (80, 64, 64), (1, 4, 6, 64), (64,), (0, 64)])
def test_token_linear_is_nn_linear(shape: tuple[int, ...]) -> None:
    torch.manual_seed(5)
    layer = TokenLinear(64, 96)
    x = torch.randn(shape, requires_grad=True)
    with torch.enable_grad():
        out = layer(x)
        expected = torch.nn.functional.linear(x, layer.weight, layer.bias)
        assert out.shape == (*shape[:-1], 96)
        assert torch.equal(out, expected)  # bit-identical here: the same sums, one kernel
        if out.numel():
            grads = torch.autograd.grad(out.square().sum(), (x, layer.weight))
            expected_grads = torch.autograd.grad(expected.square().sum(), (x, layer.weight))
            for got, want in zip(grads, expected_grads, strict=True):
                assert torch.allclose(got, want, rtol=1e-5, atol=1e-4)
    transposed = torch.randn(64, 10).t()  # not contiguous: nn.Linear's path
    assert torch.equal(
        layer(transposed), torch.nn.functional.linear(transposed, layer.weight, layer.bias)
    )

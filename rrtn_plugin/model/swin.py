"""The Swin transformer backbone of each RRTN propagation branch.

A SwinIR-style block run at half resolution: shallow convs bring the branch input to an
``embed_dim`` map at H/2 × W/2, residual groups of (shifted-)window attention refine it, and a
nearest-neighbour ×2 upsample brings it back to full resolution and ``embed_dim // 4`` channels.
Module and parameter names follow the official checkpoints (``backbone.<branch>.…``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

from rrtn_plugin.model.kernels import Kernels


def relative_position_index(window_size: int) -> torch.Tensor:
    """(S², S²) int64 index into the (2S−1)² relative-position bias table, S = ``window_size``.

    Entry (i, j) identifies the displacement of token j relative to token i inside a window, with
    tokens in row-major order.
    """
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(1)
    delta = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return delta[..., 0] * (2 * window_size - 1) + delta[..., 1]


def partition_windows(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) → (B · H/S · W/S, S², C): non-overlapping S×S windows, row-major."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def shifted_window_mask(
    h: int, w: int, *, window_size: int, shift: int, device: torch.device | None = None
) -> torch.Tensor:
    """(nW, S², S²) additive attention mask for windows of a map cyclically shifted by ``shift``.

    After the shift, some windows hold pixels from up to four regions that are not neighbours in
    the image; attention between tokens of different regions gets −100 (the reference's value),
    within a region 0.
    """
    region = torch.zeros(1, h, w, 1, device=device)
    bands = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    label = 0
    for rows in bands:
        for cols in bands:
            region[:, rows, cols, :] = label
            label += 1
    labels = partition_windows(region, window_size).squeeze(-1)
    differ = labels.unsqueeze(1) != labels.unsqueeze(2)
    return torch.zeros(differ.shape, device=device).masked_fill(differ, -100.0)


def window_order(
    h: int, w: int, *, window_size: int, shift: int, device: torch.device | None = None
) -> torch.Tensor:
    """(H·W,) int64: the row-major token indices of an H × W map, cyclically shifted by
    ``shift`` and cut into S × S windows, in window order.

    Gathering tokens by it does the shift and :func:`partition_windows` in one copy; gathering
    the windows' tokens by its inverse permutation undoes both.
    """
    index = torch.arange(h * w, device=device).view(1, h, w, 1)
    if shift:
        index = torch.roll(index, shifts=(-shift, -shift), dims=(1, 2))
    return partition_windows(index, window_size).reshape(-1)


class TokenLinear(nn.Linear):
    """``nn.Linear`` over tokens (…, C_in) → (…, C_out), run on CPU as a 1×1 convolution.

    The tokens, viewed as a channels-last map, go to oneDNN's convolution instead of the BLAS
    matmul behind ``nn.Linear``: the same sums (bit-identical in float32 here), faster for these
    64- and 128-channel layers on CPUs where that BLAS takes a generic path (MKL on AMD). Other
    devices, and tokens that are not contiguous, keep ``nn.Linear``, as does
    ``Kernels(linear_as_convolution=False)`` (:attr:`kernels`, set by :meth:`set_kernels`).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.kernels = Kernels()

    def set_kernels(self, kernels: Kernels) -> None:
        """Use ``kernels.linear_as_convolution`` from now on."""
        self.kernels = kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            not self.kernels.linear_as_convolution
            or x.device.type != "cpu"
            or not x.is_contiguous()
            or x.ndim < 2
            or not x.numel()
        ):
            return super().forward(x)
        leading = x.shape[:-1]
        rows = x.shape[0] if x.ndim > 2 else 1
        as_map = x.view(1, rows, -1, self.in_features).permute(0, 3, 1, 2)
        out = F.conv2d(as_map, self.weight[:, :, None, None], self.bias)
        return out.permute(0, 2, 3, 1).reshape(*leading, self.out_features)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative-position bias.

    Shapes: windows (B·nW, S², C) and an additive bias (1 or nW, heads, S², S²) from
    :meth:`attention_bias` → (B·nW, S², C).

    How softmax(q·kᵀ·scale + bias)·v is computed is ``kernels.attention``
    (:class:`~rrtn_plugin.model.kernels.Kernels`, set by :meth:`set_kernels`; benchmarks and
    tests compare the kernels).
    """

    relative_position_index: torch.Tensor
    """(S², S²) buffer: the bias table's row for each (query, key) pair (see
    :func:`relative_position_index`)."""

    def __init__(self, dim: int, *, window_size: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = (dim // num_heads) ** -0.5
        self.kernels = Kernels()
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        self.register_buffer(
            "relative_position_index", relative_position_index(window_size), persistent=False
        )
        self.qkv = TokenLinear(dim, 3 * dim)
        self.proj = TokenLinear(dim, dim)

    def set_kernels(self, kernels: Kernels) -> None:
        """Use ``kernels`` for the attention and the linear layers from now on."""
        self.kernels = kernels
        self.qkv.set_kernels(kernels)
        self.proj.set_kernels(kernels)

    def attention_bias(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The relative-position bias plus the optional (nW, S², S²) shift mask:
        (nW or 1, heads, S², S²)."""
        n = self.window_size * self.window_size
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        return bias if mask is None else bias + mask.unsqueeze(1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        bw, n, c = x.shape
        windows = bias.shape[0]
        if bw % windows:
            raise ValueError(f"{bw} windows do not divide into images of {windows} windows")
        heads = self.num_heads
        d = c // heads
        qkv = self.qkv(x).view(bw, n, 3, heads, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B·nW, heads, S², C/heads)
        bias = bias.to(q.dtype)
        kernel = self.kernels.attention_kernel(x.device)
        if kernel == "baddbmm":
            q, k, v = qkv.reshape(3, bw * heads, n, d).unbind(0)
            if bw == windows:  # a bias per window: added inside the first matmul
                logits = torch.baddbmm(
                    bias.reshape(bw * heads, n, n), q, k.transpose(1, 2), alpha=self.scale
                )
            else:  # a bias shared by several windows: added in place, not copied per window
                logits = torch.bmm(q * self.scale, k.transpose(1, 2))
                logits.view(-1, windows, heads, n, n).add_(bias)
            out = torch.bmm(logits.softmax(dim=-1), v).view(bw, heads, n, d)
        else:
            if bw != windows:  # the fused kernels take 4-D tensors only: one bias per window
                bias = bias.expand(bw // windows, -1, -1, -1, -1).reshape(bw, heads, n, n)
            if kernel == "sdpa":
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
            else:
                out = ((q * self.scale) @ k.transpose(-2, -1) + bias).softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    """Linear → GELU → Linear. Shapes: (…, dim) → (…, dim)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = TokenLinear(dim, hidden)
        self.fc2 = TokenLinear(hidden, dim)

    def set_kernels(self, kernels: Kernels) -> None:
        """Use ``kernels`` for both linear layers from now on."""
        self.fc1.set_kernels(kernels)
        self.fc2.set_kernels(kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm window attention (cyclically shifted by ``shift`` when > 0) and MLP, both residual.

    Shapes: tokens (B, H·W, C) with ``size`` = (H, W) → (B, H·W, C); H and W must be
    multiples of ``window_size``.

    The token order of the windows and the shift mask are computed once per map size; without
    autograd, so is the attention bias (kept until the bias table changes).
    """

    def __init__(
        self, dim: int, *, num_heads: int, window_size: int, shift: int, mlp_hidden: int
    ) -> None:
        super().__init__()
        if not 0 <= shift < window_size:
            raise ValueError(f"shift {shift} must be in [0, window_size={window_size})")
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size=window_size, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)
        self._layouts: dict[tuple[int, int, torch.device], _WindowLayout] = {}
        self._biases: dict[tuple[int, int, torch.device, torch.dtype, int], torch.Tensor] = {}

    def _layout(self, h: int, w: int, device: torch.device) -> _WindowLayout:
        key = (h, w, device)
        if key not in self._layouts:
            order = window_order(
                h, w, window_size=self.window_size, shift=self.shift, device=device
            )
            mask = (
                None
                if self.shift == 0
                else shifted_window_mask(
                    h, w, window_size=self.window_size, shift=self.shift, device=device
                )
            )
            self._layouts[key] = _WindowLayout(order, torch.argsort(order), mask)
        return self._layouts[key]

    def _bias(self, layout: _WindowLayout, key: tuple[int, int, torch.device]) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.attn.attention_bias(layout.mask)
        table = self.attn.relative_position_bias_table
        versioned = (*key, table.dtype, table._version)
        if versioned not in self._biases:
            if len(self._biases) >= 8:  # tile sizes of a clip, or a stale table version
                self._biases.clear()
            self._biases[versioned] = self.attn.attention_bias(layout.mask)
        return self._biases[versioned]

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        b, tokens, c = x.shape
        if tokens != h * w or h % self.window_size or w % self.window_size:
            raise ValueError(
                f"{tokens} tokens of size {h}x{w} do not make windows of {self.window_size}"
            )
        layout = self._layout(h, w, x.device)
        windows = self.norm1(x).index_select(1, layout.order)
        windows = windows.view(-1, self.window_size * self.window_size, c)
        y = self.attn(windows, self._bias(layout, (h, w, x.device)))
        x = x + y.view(b, tokens, c).index_select(1, layout.inverse)
        return x + self.mlp(self.norm2(x))


class _WindowLayout(NamedTuple):
    order: torch.Tensor
    """(H·W,) token indices in window order (:func:`window_order`)."""
    inverse: torch.Tensor
    """(H·W,) its inverse permutation."""
    mask: torch.Tensor | None
    """(nW, S², S²) shift mask, or None without a shift."""


class BlockSequence(nn.Module):
    """Swin blocks alternating unshifted and half-window-shifted attention."""

    def __init__(self, blocks: list[SwinBlock]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, size)
        return x


class ResidualSwinGroup(nn.Module):
    """Swin blocks, then a conv3x3 on the map, plus the group's input (SwinIR's RSTB).

    Shapes: tokens (B, H·W, C) → (B, H·W, C).
    """

    def __init__(
        self, dim: int, *, depth: int, num_heads: int, window_size: int, mlp_hidden: int
    ) -> None:
        super().__init__()
        self.residual_group = BlockSequence(
            [
                SwinBlock(
                    dim,
                    num_heads=num_heads,
                    window_size=window_size,
                    shift=0 if i % 2 == 0 else window_size // 2,
                    mlp_hidden=mlp_hidden,
                )
                for i in range(depth)
            ]
        )
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = tokens_to_map(self.residual_group(x, size), size)
        return map_to_tokens(self.conv(y)) + x


class PatchNorm(nn.Module):
    """LayerNorm over channels, applied when a map is flattened to tokens (``patch_embed``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(map_to_tokens(x))


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, H·W, C)."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_map(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H·W, C) → (B, C, H, W)."""
    b, _, c = x.shape
    return x.transpose(1, 2).reshape(b, c, size[0], size[1])


class SwinBackbone(nn.Module):
    """One propagation branch's backbone.

    Shapes: (N, in_channels, H, W) → (N, embed_dim // 4, H, W); H and W must be multiples of
    ``2 · window_size``.

    Its convolutions run channels-last (weights and maps) unless its
    :class:`~rrtn_plugin.model.kernels.Kernels` say otherwise (``swin_channels_last``, set with
    :meth:`set_kernels`): the maps are then already in token layout, so moving between maps and
    tokens costs no copy.

    Args:
        in_channels: channels of the branch input, (2 + branch index) · num_feat in RRTN.
        embed_dim: channels at half resolution (64).
        depths: Swin blocks per residual group ((2, 2, 2)).
        num_heads: attention heads per block (4).
        window_size: attention window side in half-resolution pixels (8).
        mlp_hidden: hidden width of each block's MLP (128).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        embed_dim: int,
        depths: tuple[int, ...],
        num_heads: int,
        window_size: int,
        mlp_hidden: int,
    ) -> None:
        super().__init__()
        self.multiple = 2 * window_size
        half = embed_dim // 2
        self.conv_first = nn.Conv2d(in_channels, half, 3, 1, 1)
        self.conv_second = nn.Conv2d(half, embed_dim, 4, 2, 1)
        self.patch_embed = PatchNorm(embed_dim)
        self.layers = nn.ModuleList(
            ResidualSwinGroup(
                embed_dim,
                depth=depth,
                num_heads=num_heads,
                window_size=window_size,
                mlp_hidden=mlp_hidden,
            )
            for depth in depths
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
        self.conv_before_upsample = nn.Sequential(
            nn.Conv2d(embed_dim, embed_dim, 3, 1, 1), nn.LeakyReLU()
        )
        self.conv_up1 = nn.Conv2d(embed_dim, half, 3, 1, 1)
        self.conv_last = nn.Conv2d(half, embed_dim // 4, 3, 1, 1)
        self.set_kernels(Kernels())

    def set_kernels(self, kernels: Kernels) -> None:
        """Use ``kernels`` from now on: its attention and linear-layer choices in every block,
        its Swin layout for the weights (laid out here) and for the maps in :meth:`forward`."""
        self.kernels = kernels
        for layer in cast("Iterable[ResidualSwinGroup]", self.layers):
            for block in cast("Iterable[SwinBlock]", layer.residual_group.blocks):
                block.attn.set_kernels(kernels)
                block.mlp.set_kernels(kernels)
        self.to(memory_format=kernels.swin_layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"backbone input {h}x{w} is not a multiple of {self.multiple}")
        layout = self.kernels.swin_layout
        x1 = F.leaky_relu(self.conv_first(x.contiguous(memory_format=layout)), 0.2)
        x = self.conv_second(x1)
        size = (x.shape[2], x.shape[3])
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, size)
        x = self.conv_after_body(tokens_to_map(self.norm(tokens), size)) + x
        x = self.conv_before_upsample(x)
        x = F.leaky_relu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")) + x1, 0.2)
        return self.conv_last(x).contiguous()

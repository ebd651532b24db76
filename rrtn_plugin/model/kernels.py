"""Which kernels and memory layouts the network runs with: :class:`Kernels`, one frozen value.

Every choice that changes how (not what) the network computes lives here, with the production
behaviour as the defaults: the attention and deformable-convolution kernels, the Swin linear
layers as convolutions, the channels-last layouts, and how many frames the per-frame stages
batch. A model holds one :class:`Kernels` and hands it to its parts
(:meth:`~rrtn_plugin.model.rrtn.RRTN.set_kernels`); benchmarks and tests pass other values to
compare the paths. Why each default is the faster one is said at each field; the measured
figures are in the README's speed section and ``bench/speed.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ATTENTION_KERNELS = ("auto", "baddbmm", "sdpa", "reference")
DEFORM_KERNELS = ("auto", "sampled", "torchvision")


@dataclass(frozen=True)
class Kernels:
    """How the network computes; every value gives the same result within float rounding.

    Attributes:
        attention: how window attention computes softmax(q·kᵀ·scale + bias)·v. ``"sdpa"``:
            :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels);
            ``"baddbmm"``: the bias added inside the first batched matmul (on CPU, where SDPA's
            kernel is slow for these 64-token windows of 16-dim heads); ``"reference"``: step by
            step as the reference does; ``"auto"``: baddbmm on CPU, SDPA elsewhere.
        deform: the modulated deformable convolution. ``"sampled"``:
            :func:`~rrtn_plugin.model.deform.sampled_deform_conv2d` (``grid_sample`` and a matrix
            product, faster than torchvision's kernel on CPU, forward and backward);
            ``"torchvision"``: :func:`torchvision.ops.deform_conv2d`; ``"auto"``: sampled on CPU,
            torchvision elsewhere.
        linear_as_convolution: run the Swin blocks' linear layers on CPU as oneDNN 1×1
            convolutions over the tokens viewed as a channels-last map (the same sums; faster
            than the generic BLAS path ``nn.Linear`` takes on some CPUs, MKL on AMD).
        swin_channels_last: lay out the Swin backbones' convolution weights and maps
            channels-last on every device, so that moving between maps and tokens costs no copy.
        channels_last_on_cpu: lay out the other convolutions' feature maps (RAFT, alignment,
            feature extraction, reconstruction) channels-last on CPU, where oneDNN takes that
            layout as it is and reorders channels-first maps on the way in and out. Other
            devices keep PyTorch's default layout.
        frame_batch: frames the per-frame stages (spatial features, reconstruction) take in one
            batch at most (1: frame by frame). With 8 their transient maps (≈ 600 B/px each)
            stay below one propagation step's working set (:mod:`rrtn_plugin.engine.memory`),
            which the memory plan covers, whatever the tile size.
    """

    attention: str = "auto"
    deform: str = "auto"
    linear_as_convolution: bool = True
    swin_channels_last: bool = True
    channels_last_on_cpu: bool = True
    frame_batch: int = 8

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_KERNELS:
            raise ValueError(
                f"unknown attention kernel {self.attention!r}; expected one of {ATTENTION_KERNELS}"
            )
        if self.deform not in DEFORM_KERNELS:
            raise ValueError(
                f"unknown deformable-convolution kernel {self.deform!r}; "
                f"expected one of {DEFORM_KERNELS}"
            )
        if self.frame_batch < 1:
            raise ValueError(f"frame_batch must be at least 1, got {self.frame_batch}")

    def attention_kernel(self, device: torch.device) -> str:
        """The attention kernel that runs on ``device`` (``"auto"`` resolved)."""
        if self.attention != "auto":
            return self.attention
        return "baddbmm" if device.type == "cpu" else "sdpa"

    def deform_kernel(self, device: torch.device) -> str:
        """The deformable-convolution kernel that runs on ``device`` (``"auto"`` resolved)."""
        if self.deform != "auto":
            return self.deform
        return "sampled" if device.type == "cpu" else "torchvision"

    def conv_layout(self, device: torch.device) -> torch.memory_format:
        """The layout of convolution feature maps on ``device`` (outside the Swin backbones)."""
        if device.type == "cpu" and self.channels_last_on_cpu:
            return torch.channels_last
        return torch.contiguous_format

    @property
    def swin_layout(self) -> torch.memory_format:
        """The layout of the Swin backbones' convolution weights and maps."""
        return torch.channels_last if self.swin_channels_last else torch.contiguous_format

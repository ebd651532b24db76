"""Flow-guided second-order deformable alignment (BasicVSR++ style).

The modulated deformable convolution (DCNv2) is
:func:`~rrtn_plugin.model.deform.sampled_deform_conv2d` on CPU (torchvision's result within float
rounding, several times faster there) and :func:`torchvision.ops.deform_conv2d` elsewhere, unless
the module's :class:`~rrtn_plugin.model.kernels.Kernels` choose otherwise.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from rrtn_plugin.model.deform import sampled_deform_conv2d
from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.layout import cat_for_convolution


class SecondOrderDeformableAlignment(nn.Module):
    """Align the features of the two previously visited frames to the current frame.

    A small conv net looks at both flow-warped candidates, the current frame's features and the
    two flows, and predicts per-kernel-point offset residuals (bounded by
    ``max_residue_magnitude`` through tanh, then added to the flows) and modulation masks for a
    modulated deformable 3×3 convolution over the two unwarped feature maps.

    Args:
        channels: feature channels per frame (``num_feat``, 16).
        deform_groups: deformable groups of the DCN (16).
        max_residue_magnitude: bound of the learned offset residual, in pixels (10).

    Parameter names follow the official checkpoints: ``weight`` (channels, 2·channels, 3, 3) and
    ``bias`` of the DCN, and ``conv_offset.{0,2,4,6}``.

    The DCN implementation and the layout of the offset convolutions' maps are its
    :class:`~rrtn_plugin.model.kernels.Kernels` (``deform``, ``channels_last_on_cpu``; set with
    :meth:`set_kernels`).
    """

    def __init__(
        self, channels: int, *, deform_groups: int, max_residue_magnitude: float = 10.0
    ) -> None:
        super().__init__()
        self.deform_groups = deform_groups
        self.max_residue_magnitude = max_residue_magnitude
        self.kernels = Kernels()
        self.weight = nn.Parameter(torch.empty(channels, 2 * channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * channels + 4, channels, 3, 1, 1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(channels, 27 * deform_groups, 3, 1, 1),
        )
        nn.init.zeros_(cast(torch.Tensor, self.conv_offset[-1].weight))
        nn.init.zeros_(cast(torch.Tensor, self.conv_offset[-1].bias))

    def set_kernels(self, kernels: Kernels) -> None:
        """Use ``kernels`` from now on."""
        self.kernels = kernels

    def forward(
        self,
        feats: torch.Tensor,
        condition: torch.Tensor,
        flow_n1: torch.Tensor,
        flow_n2: torch.Tensor,
    ) -> torch.Tensor:
        """Align.

        Args:
            feats: (N, 2C, H, W) the propagated features of the previous and second-previous
                visited frames, unwarped.
            condition: (N, 3C, H, W) previous features warped by ``flow_n1``, the current frame's
                spatial features, second-previous features warped by ``flow_n2``.
            flow_n1: (N, 2, H, W) flow from the current frame to the previous visited one (x, y).
            flow_n2: (N, 2, H, W) flow from the current frame to the second-previous one.

        Returns:
            (N, C, H, W) aligned features.
        """
        hidden = self.conv_offset[:-1](
            cat_for_convolution([condition, flow_n1, flow_n2], kernels=self.kernels)
        )
        # The last conv predicts, per kernel point and group, a (dy, dx) residue o, then a mask.
        # As two convolutions each output stays under glibc's 32 MiB limit for reused memory at
        # 128×160 (one 432-channel map is 35 MB, mapped and page-faulted afresh at each call).
        # Channels-first, because the DCN reads them a (group, point) plane at a time: that saves
        # more in the DCN than channels-last outputs would gain in these two convolutions.
        hidden = hidden.contiguous()
        last = cast(nn.Conv2d, self.conv_offset[-1])
        weight, bias = last.weight, cast(torch.Tensor, last.bias)
        split = 2 * last.out_channels // 3
        mask = torch.sigmoid(F.conv2d(hidden, weight[split:], bias[split:], padding=1))
        # The residue is bounded as m·tanh(o) = 2m·σ(2o) − m (CPU sigmoid kernels are several
        # times faster than tanh), the 2 of 2o taken into the weights (exact).
        sigmoid = torch.sigmoid(F.conv2d(hidden, 2 * weight[:split], 2 * bias[:split], padding=1))
        n, _, h, w = sigmoid.shape
        # DCN offsets are (dy, dx) per kernel point; flows are (x, y). Each frame's offsets are
        # its flow plus its residues, laid out (frame, point·group, yx). Out of place: under
        # autocast the sum is promoted to the flows' fp32 (offsets of hundreds of pixels would
        # lose a quarter pixel in fp16 or bf16).
        m = self.max_residue_magnitude
        flows = torch.stack([flow_n1.flip(1), flow_n2.flip(1)], dim=1).unsqueeze(2) - m
        offset = torch.add(
            flows.contiguous(), sigmoid.view(n, 2, split // 4, 2, h, w), alpha=2 * m
        ).view(n, split, h, w)
        if self.kernels.deform_kernel(feats.device) == "sampled":
            return sampled_deform_conv2d(feats, offset, self.weight, self.bias, mask)
        return deform_conv2d(feats, offset, self.weight, self.bias, padding=(1, 1), mask=mask)

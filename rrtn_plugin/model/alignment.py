"""Flow-guided second-order deformable alignment (BasicVSR++ style), on torchvision's DCNv2.

Training on CPU uses :func:`~rrtn_plugin.model.deform.sampled_deform_conv2d` instead (same
result within float rounding, a much faster backward pass there).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import deform_conv2d

from rrtn_plugin.model.deform import sampled_deform_conv2d


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
    """

    def __init__(self, channels: int, *, deform_groups: int,
                 max_residue_magnitude: float = 10.0) -> None:
        super().__init__()
        self.deform_groups = deform_groups
        self.max_residue_magnitude = max_residue_magnitude
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
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def forward(self, feats: torch.Tensor, condition: torch.Tensor, flow_n1: torch.Tensor,
                flow_n2: torch.Tensor) -> torch.Tensor:
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
        out = self.conv_offset(torch.cat([condition, flow_n1, flow_n2], dim=1))
        o1, o2, modulation = torch.chunk(out, 3, dim=1)
        residue = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), dim=1))
        residue_1, residue_2 = torch.chunk(residue, 2, dim=1)
        points = residue_1.shape[1] // 2
        # DCN offsets are (dy, dx) per kernel point; flows are (x, y).
        offset = torch.cat([residue_1 + flow_n1.flip(1).repeat(1, points, 1, 1),
                            residue_2 + flow_n2.flip(1).repeat(1, points, 1, 1)], dim=1)
        mask = torch.sigmoid(modulation)
        if self.training and feats.device.type == "cpu":
            return sampled_deform_conv2d(feats, offset, self.weight, self.bias, mask)
        return deform_conv2d(feats, offset, self.weight, self.bias, padding=(1, 1), mask=mask)

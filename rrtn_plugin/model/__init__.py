"""The RRTN network (``RRTN``), its builder and its checkpoints.

Shapes throughout: clips are (N, T, C, H, W) float32 in [-1, 1] (display-referred luminance,
C = 1 for the released weights); flows are (N, T, 2, H, W) in pixels, x first. How the network
computes (kernels, layouts, frame batches) is one :class:`Kernels` value the model holds.
"""

from rrtn_plugin.model.checkpoint import (
    convert_official_state_dict,
    infer_config,
    load_rrtn,
    read_metadata,
    save_rrtn,
)
from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.rrtn import (
    BRANCHES,
    RRTN,
    RRTNConfig,
    build_identity_rrtn,
    build_rrtn,
    residual_indicator,
)

__all__ = [
    "BRANCHES",
    "RRTN",
    "Kernels",
    "RRTNConfig",
    "build_identity_rrtn",
    "build_rrtn",
    "convert_official_state_dict",
    "infer_config",
    "load_rrtn",
    "read_metadata",
    "residual_indicator",
    "save_rrtn",
]

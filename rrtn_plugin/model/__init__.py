"""The RRTN network (``RRTN``), its builder and its checkpoints.

Shapes throughout: clips are (N, T, C, H, W) float32 in [-1, 1] (display-referred luminance,
C = 1 for the released weights); flows are (N, T, 2, H, W) in pixels, x first. How the network
computes (kernels, layouts, frame batches) is one :class:`Kernels` value the model holds.

The names below load torch when first used, not with the package, so that :mod:`.choices` (what
a front end offers, such as the flow sources) can be read without it.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
else:
    from rrtn_plugin.lazy import lazy_names

    __getattr__ = lazy_names(
        __name__,
        {
            "convert_official_state_dict": "checkpoint",
            "infer_config": "checkpoint",
            "load_rrtn": "checkpoint",
            "read_metadata": "checkpoint",
            "save_rrtn": "checkpoint",
            "Kernels": "kernels",
            "BRANCHES": "rrtn",
            "RRTN": "rrtn",
            "RRTNConfig": "rrtn",
            "build_identity_rrtn": "rrtn",
            "build_rrtn": "rrtn",
            "residual_indicator": "rrtn",
        },
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

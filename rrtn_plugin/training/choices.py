"""The choices a training run is started with that front ends offer (``rrtn-plugin train``).
Imports nothing heavy, so that they can be shown (``--help``) before torch loads."""

STAGES = ("first", "second")
"""The network trained: the first pass (damaged → clean) or the second (first pass's output →
clean)."""
LOSSES = ("mse", "charbonnier", "l1")
"""``mse`` is the default: under random per-clip flicker and fading, an L1-like loss's gradient
sign is set by the clip's global offset, hiding the local damage (measured: in 150 steps MSE cut
the local error by 17 %, Charbonnier by 4 %). ``charbonnier`` is the paper's choice."""

"""The choices a network is built with that front ends offer (``rrtn-plugin train --flow``).
Imports nothing heavy, so that they can be shown (``--help``) before torch loads."""

FLOW_SOURCES = ("raft", "dis")
"""``raft``: torchvision RAFT-large with the checkpoint's weights. ``dis``: OpenCV's Dense Inverse
Search, parameter-free, no weights to download."""

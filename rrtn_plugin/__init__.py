"""rrtn-plugin: old-film restoration with RRTN for compositing and editing hosts.

The data path, package by package: ``model`` (the network and its checkpoints) and ``engine``
(clips of any size and length: padding, windows, flow reuse, recursion, tiling, devices).
"""

__version__ = "0.1.0"

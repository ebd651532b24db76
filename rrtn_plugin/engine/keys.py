"""Cache keys: what every piece of cached work is named by, built from content hashes only.

A network is named by :func:`model_key`: its weights' content hash
(:meth:`RRTN.fingerprint <rrtn_plugin.model.rrtn.RRTN.fingerprint>`) and its kernels, never by
the Python object, so two networks with equal weights share their work, a network with other
weights shares none, and a new network that happens to get a freed network's ``id()`` cannot
find the old one's entries. Frames are named by :func:`content_key`, and every other key by
the keys of what it was computed from:

- a flow: the network, the precision, the flow resolution, the two frames (:func:`flow_key`);
- a noise mask: the frame, its two neighbours and the flow resolution (:func:`mask_key`, which
  names the mask's inputs; :func:`model_mask_key` adds the network and precision that computed
  it);
- spatial features: the network, the mask's inputs, the precision (:func:`spatial_key`);
- a window's output: the network, the session's parameters, every frame and mask
  (:func:`window_key`);
- a pass's output frame: the windows it was blended from and its place in each
  (:func:`output_key`); the next pass's input: that output (:func:`input_key`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable, Sequence

import torch

from rrtn_plugin.model import RRTN


def digest(*parts: Hashable) -> str:
    """A short stable key for a tuple of key parts."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def content_key(tensor: torch.Tensor) -> str:
    """Hash of a tensor's values (its dtype and shape included)."""
    data = tensor.detach().contiguous().cpu()
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{data.dtype}{tuple(data.shape)}".encode())
    h.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return h.hexdigest()


def model_key(model: RRTN) -> str:
    """A network's name in cache keys: its weights' fingerprint and the kernels it runs with
    (other kernels round differently)."""
    return digest("model", model.fingerprint(), model.kernels)


def flow_key(model: str, precision: str, size: tuple[int, int], first: str, second: str) -> str:
    """The flow from frame ``first`` to ``second`` (content keys) at ``size``, estimated at
    ``precision`` (autocast changes it)."""
    return digest("flow", model, precision, size, first, second)


def mask_key(frame: str, following: str, preceding: str, flow_size: tuple[int, int]) -> str:
    """The inputs of a frame's noise mask: the frame, the neighbours it is compared with and the
    flow resolution (not the network: windows and spatial features name that themselves)."""
    return digest("mask", frame, following, preceding, flow_size)


def model_mask_key(model: str, mask: str, precision: str) -> str:
    """A noise mask as ``model`` computed it from the inputs ``mask`` (:func:`mask_key`) at
    ``precision`` (its flows depend on it)."""
    return digest(model, mask, precision)


def spatial_key(model: str, mask: str, precision: str) -> str:
    """A frame's spatial features, from its mask's inputs ``mask``, at ``precision``."""
    return digest("spatial", model, mask, precision)


def window_key(model: str, params: Hashable, frames: Sequence[str], masks: Sequence[str]) -> str:
    """A window's network output: its frames' keys and their masks' input keys, in order."""
    return digest("window", model, params, *frames, *masks)


def output_key(places: Iterable[tuple[str, int]]) -> str:
    """A pass's output frame: the (window key, place in the window) pairs it was blended from."""
    return digest("out", *places)


def input_key(output: str, quantize: bool) -> str:
    """The next pass's input frame made from the output ``output`` (clamped, maybe quantized)."""
    return digest("in", output, quantize)

"""The network's own scheduling: per-frame stages batched, with the same frames as one by one."""

from __future__ import annotations

import torch
from helpers import TINY_DIS_CONFIG

from rrtn_plugin.model import build_rrtn
from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.rrtn import frame_batches

CONFIG = TINY_DIS_CONFIG


def test_frame_batches_cover_every_frame_once_within_the_limits() -> None:
    assert frame_batches(20, 128 * 160) == [range(0, 8), range(8, 16), range(16, 20)]
    assert frame_batches(3, 1920 * 1088) == [range(0, 1), range(1, 2), range(2, 3)]
    assert frame_batches(5, 1024 * 1024) == [range(0, 2), range(2, 4), range(4, 5)]


@torch.no_grad()
def test_batched_frames_equal_frames_one_at_a_time() -> None:
    torch.manual_seed(5)
    model = build_rrtn(CONFIG)
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.05)
    lq = torch.rand(2, 5, 1, 32, 32) * 2 - 1
    batched = model(lq)
    model.set_kernels(Kernels(frame_batch=1))
    single = model(lq)
    assert (batched - single).abs().max().item() < 1e-5
    assert (batched - lq).abs().mean().item() > 1e-3  # the network did change the frames


def test_fingerprint_names_the_weights_and_hyper_parameters() -> None:
    torch.manual_seed(1)
    model = build_rrtn(CONFIG)
    twin = build_rrtn(CONFIG)
    twin.load_state_dict(model.state_dict())
    assert twin.fingerprint() == model.fingerprint()  # another object, the same weights
    twin.set_kernels(Kernels(frame_batch=1))
    assert twin.fingerprint() == model.fingerprint()  # kernels are not weights
    changed = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    twin.load_state_dict(changed)  # the same object, other weights: taken afresh
    assert twin.fingerprint() != model.fingerprint()
    other = build_rrtn(CONFIG)  # other random weights
    assert other.fingerprint() != model.fingerprint()

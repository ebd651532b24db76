"""Repair modes: full is the network's output, defects touches only the feathered damage mask
(every other pixel bit-identical to the input), strength mixes with the input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rrtn_plugin.engine.repair import damage_mask, feathered, repair
from rrtn_plugin.errors import RRTNError


def pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A grainy (T, H, W) input and an output that differs from it everywhere."""
    g = torch.Generator().manual_seed(0)
    inp = (0.5 + 0.05 * torch.randn(3, 40, 48, generator=g)).clamp(0, 1)
    out = (inp + 0.02 * torch.randn(3, 40, 48, generator=g)).clamp(0, 1)
    return inp, out


def sparse_mask() -> torch.Tensor:
    mask = torch.zeros(3, 40, 48, dtype=torch.bool)
    mask[0, 10:13, 20:22] = True  # a speck
    mask[1, :, 30] = True  # a scratch
    return mask


def within(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels no farther than ``radius`` px (chessboard distance) from the mask."""
    return F.max_pool2d(mask.float().unsqueeze(1), 2 * radius + 1, 1, radius)[:, 0] > 0


def test_defects_mode_leaves_unmasked_pixels_bit_identical() -> None:
    inp, out = pair()
    mask = sparse_mask()
    grow, feather = 1, 2.0
    result = repair(inp, out, mode="defects", mask=mask, grow=grow, feather=feather)
    reach = grow + math.ceil(1.5 * feather)
    far = ~within(mask, reach)
    assert far.float().mean() > 0.5
    assert torch.equal(result[far], inp[far])  # bit for bit, grain and all
    assert torch.equal(result[within(mask, grow)], out[within(mask, grow)])  # repaired fully
    edge = within(mask, reach) & ~within(mask, grow)
    between = (result[edge] - inp[edge]) / (out[edge] - inp[edge])
    assert float(between.min()) >= -1e-5
    assert float(between.max()) <= 1 + 1e-5
    assert 0.1 < float(between.mean()) < 0.9  # a feathered edge, not a hard one
    # frame 2 has no damage at all: untouched
    assert torch.equal(result[2], inp[2])


def test_full_mode_and_strength() -> None:
    inp, out = pair()
    assert repair(inp, out) is out
    assert repair(inp, out, strength=0) is inp
    half = repair(inp, out, strength=0.5)
    assert torch.allclose(half, (inp + out) / 2, atol=1e-6)
    mask = sparse_mask()
    weak = repair(inp, out, mode="defects", mask=mask, strength=0.25)
    assert torch.allclose(weak[mask], (0.75 * inp + 0.25 * out)[mask], atol=1e-6)
    assert torch.equal(weak[~within(mask, 4)], inp[~within(mask, 4)])


def test_feathered_weights() -> None:
    mask = torch.zeros(1, 21, 21, dtype=torch.bool)
    mask[0, 10, 10] = True
    weights = feathered(mask, grow=2, feather=2.0)
    row = weights[0, 10]
    assert torch.equal(row[8:13], torch.ones(5))  # grown by 2 px: weight 1
    assert 0 < float(row[13]) < 1
    assert float(row[13]) > float(row[14]) > float(row[15]) >= 0  # fading out
    assert torch.equal(row[:5], torch.zeros(5))  # beyond 2 + 3 px: exactly 0
    assert torch.equal(feathered(mask, grow=0, feather=0), mask.float())
    with pytest.raises(RRTNError, match="grow"):
        feathered(mask, grow=-1)


def test_damage_mask_from_the_noise_mask_and_the_change() -> None:
    noise = torch.tensor([[0.0, 0.05, 0.2, 0.5]])
    assert damage_mask(noise).tolist() == [[False, False, True, True]]
    inp = torch.zeros(1, 4)
    out = torch.tensor([[0.3, 0.0, 0.0, 0.0]])  # a persistent scratch the network removed
    both = damage_mask(noise, inp=inp, out=out, changed=0.1)
    assert both.tolist() == [[True, False, True, True]]
    with pytest.raises(RRTNError, match="inp and out"):
        damage_mask(noise, changed=0.1)


def test_bad_arguments_are_refused() -> None:
    inp, out = pair()
    with pytest.raises(RRTNError, match="mode"):
        repair(inp, out, mode="grain")
    with pytest.raises(RRTNError, match="strength"):
        repair(inp, out, strength=1.5)
    with pytest.raises(RRTNError, match="damage mask"):
        repair(inp, out, mode="defects")
    with pytest.raises(RRTNError, match="differ"):
        repair(inp, out[:2])

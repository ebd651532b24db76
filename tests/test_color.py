"""Colour: configs, the working encoding, luminance, and applying the network's change."""

from __future__ import annotations

import numpy as np
import pytest

from rrtn_plugin.color import (
    ColorMode,
    Converter,
    FrameColor,
    apply_change,
    fill_nonfinite,
    load_config,
    network_input,
    resolve_colorspace,
    working_colorspace,
)
from rrtn_plugin.errors import RRTNError


@pytest.fixture(scope="module")
def config():
    return load_config("ocio://studio-config-latest")


@pytest.fixture(scope="module")
def linear(config) -> Converter:
    return Converter(config, source="lin_rec709", working=working_colorspace(config))


def test_builtin_config_is_used_without_ocio(monkeypatch: pytest.MonkeyPatch, config) -> None:
    monkeypatch.delenv("OCIO", raising=False)
    assert load_config().getName() == config.getName()
    assert resolve_colorspace(config, "scene_linear") == "ACEScg"
    assert working_colorspace(config) == "sRGB Encoded Rec.709 (sRGB)"


def test_ocio_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIO", "ocio://cg-config-latest")
    assert "cg-config" in load_config().getName()
    monkeypatch.setenv("OCIO", "/nowhere/config.ocio")
    with pytest.raises(RRTNError, match=r"\$OCIO"):
        load_config()


def test_unknown_colour_space_suggests_names(config) -> None:
    with pytest.raises(RRTNError, match="did you mean 'ADX10'"):
        resolve_colorspace(config, "ADX-10")


@pytest.mark.parametrize("source", ["scene_linear", "lin_rec709", "ACEScct", "ADX10"])
def test_round_trip_within_1e4(config, source: str) -> None:
    converter = Converter(config, source=source, working=working_colorspace(config))
    rng = np.random.default_rng(1)
    if source == "ADX10":
        # Scan codes of a black-and-white film: near-neutral (OCIO's ADX transform clips
        # strongly saturated colours, which printing density cannot hold anyway).
        grey = rng.uniform(0.02, 0.98, (32, 32, 1))
        codes = (grey + rng.uniform(-0.01, 0.01, (32, 32, 3))).astype(np.float32)
        back = converter.from_working(converter.to_working(codes))
        assert np.abs(back - codes).max() <= 1e-4
        return
    encoded = rng.uniform(0, 1, (32, 32, 3)).astype(np.float32)
    back = converter.to_working(converter.from_working(encoded))
    assert np.abs(back - encoded).max() <= 1e-4


def test_luminance_uses_bt601_weights_on_encoded_values(linear: Converter) -> None:
    # Linear (1, 0, 0) encodes to (1, 0, 0) in sRGB: luma 0.299, as PIL's convert("L").
    pixels = np.zeros((2, 2, 4), np.float32)
    pixels[..., 0] = 1.0
    pixels[..., 3] = 0.5
    luma, bad = network_input(pixels, FrameColor.of("RGBA"), linear)
    assert luma == pytest.approx(np.full((2, 2), 0.299), abs=1e-4)
    assert not bad.any()


def test_untouched_pixels_come_back_exactly(linear: Converter) -> None:
    rng = np.random.default_rng(2)
    pixels = rng.uniform(-0.5, 40.0, (16, 16, 4)).astype(np.float32)  # HDR and negatives
    luma, _ = network_input(pixels, FrameColor.of("RGBA"), linear)
    out, repair = apply_change(pixels, FrameColor.of("RGBA"), linear, luma)
    assert np.array_equal(out, pixels)
    assert not repair.any()


def test_change_keeps_chroma_and_alpha(linear: Converter) -> None:
    pixels = np.random.default_rng(3).uniform(0.05, 0.6, (8, 8, 4)).astype(np.float32)
    color = FrameColor.of(["R", "G", "B", "A"])
    luma, _ = network_input(pixels, color, linear)
    out, repair = apply_change(pixels, color, linear, luma + 0.05)
    before, after = linear.to_working(pixels[..., :3]), linear.to_working(out[..., :3])
    assert after - before == pytest.approx(np.full((8, 8, 3), 0.05), abs=2e-4)
    assert np.array_equal(out[..., 3], pixels[..., 3])
    assert repair == pytest.approx(np.full((8, 8), 0.05), abs=1e-6)
    mono, _ = apply_change(pixels, color, linear, luma, mode=ColorMode.MONOCHROME)
    assert np.ptp(mono[..., :3], axis=2).max() < 1e-6  # R = G = B


def test_highlights_are_clamped_for_the_network_only(linear: Converter) -> None:
    pixels = np.full((4, 4, 3), 8.0, np.float32)
    luma, _ = network_input(pixels, FrameColor.of("RGB"), linear)
    assert luma.max() == 1.0
    out, _ = apply_change(pixels, FrameColor.of("RGB"), linear, luma - 0.1)
    assert np.all(out < 8.0)  # the darkening reached the highlight, which stayed HDR
    assert np.all(out > 1.0)


def test_nonfinite_pixels_are_filled_for_the_network_and_restored(linear: Converter) -> None:
    pixels = np.full((6, 6, 3), 0.2, np.float32)
    pixels[2, 3] = [np.nan, 0.2, 0.2]
    pixels[4, 4, 2] = np.inf
    luma, bad = network_input(pixels, FrameColor.of("RGB"), linear)
    assert np.isfinite(luma).all()
    assert bad.sum() == 2
    out, _ = apply_change(pixels, FrameColor.of("RGB"), linear, luma + 0.01)
    assert np.isnan(out[2, 3, 0])
    assert np.isinf(out[4, 4, 2])
    assert np.isfinite(np.delete(out.reshape(-1, 3), [2 * 6 + 3, 4 * 6 + 4], axis=0)).all()


def test_fill_grows_into_large_holes() -> None:
    values = np.arange(100, dtype=np.float32).reshape(10, 10)
    bad = np.zeros((10, 10), bool)
    bad[2:8, 2:8] = True
    filled = fill_nonfinite(values, bad)
    assert np.array_equal(filled[~bad], values[~bad])
    assert values[~bad].min() <= filled[bad].min()
    assert filled[bad].max() <= values[~bad].max()


def test_grey_and_odd_channel_sets() -> None:
    assert FrameColor.of(["Y"]).indices == (0,)
    assert FrameColor.of(["A", "B", "G", "R"]).indices == (3, 2, 1)
    with pytest.raises(RRTNError, match="no picture channels"):
        FrameColor.of(["u", "v"])

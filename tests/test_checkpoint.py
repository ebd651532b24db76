"""Loading the official checkpoints and our own format; refusing bad files with clear errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.model import (
    RRTN,
    RRTNConfig,
    build_rrtn,
    convert_official_state_dict,
    infer_config,
    load_rrtn,
    read_metadata,
    save_rrtn,
)


@pytest.fixture(scope="module")
def official_state(golden_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(golden_dir / "checkpoint.pth", map_location="cpu", weights_only=True)["netG"]


def test_official_checkpoint_loads_with_released_hyper_parameters(golden_model: RRTN) -> None:
    assert golden_model.config == RRTNConfig()
    assert not golden_model.training
    params = sum(p.numel() for p in golden_model.parameters())
    flow_params = sum(p.numel() for p in golden_model.flow_net.parameters())
    assert (params, flow_params) == (7_493_345, 5_257_536)  # the manifest's counts


def test_official_keys_map_one_to_one(official_state: dict[str, torch.Tensor]) -> None:
    converted = convert_official_state_dict(official_state)
    raft_keys = [k for k in official_state if k.startswith("spynet.")]
    assert len(raft_keys) == 179
    assert len([k for k in converted if k.startswith("flow_net.")]) == 169
    renamed = converted["flow_net.update_block.recurrent_block.convgru2.convq.weight"]
    assert renamed is official_state["spynet.update_block.gru.convq2.weight"]
    assert not any(k.endswith((".attn_mask", ".relative_position_index")) for k in converted)


def test_safetensors_round_trip_keeps_weights_and_metadata(
    tmp_path: Path, small_model: RRTN
) -> None:
    path = tmp_path / "ours.safetensors"
    save_rrtn(small_model, path, metadata={"trained_on": "unit test"})
    loaded = load_rrtn(path)
    assert loaded.config == small_model.config
    for key, value in small_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert read_metadata(path)["trained_on"] == "unit test"
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_format_is_recognised_by_content_not_extension(tmp_path: Path, small_model: RRTN) -> None:
    path = tmp_path / "ours.pth"
    save_rrtn(small_model, path)
    assert load_rrtn(path).config == small_model.config


def test_hyper_parameters_are_read_from_shapes(small_model: RRTN) -> None:
    assert infer_config(small_model.state_dict()) == RRTNConfig(
        **{**small_model.config.__dict__, "flow_updates": RRTNConfig.flow_updates}
    )


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"netG": {"x": torch.zeros(1)}, "hook": _Payload(marker)}, path)
    with pytest.raises(RRTNError, match="refused"):
        load_rrtn(path)
    assert not marker.exists()
    with path.open("wb") as f:  # a plain (non-zip) pickle too
        pickle.dump(_Payload(marker), f)
    with pytest.raises(RRTNError, match="refused"):
        load_rrtn(path)
    assert not marker.exists()


def test_truncated_file_is_named(tmp_path: Path, golden_dir: Path) -> None:
    path = tmp_path / "rrtn_128_first.pth"
    path.write_bytes((golden_dir / "checkpoint.pth").read_bytes()[:1_000_000])
    with pytest.raises(RRTNError, match=r"rrtn_128_first\.pth.*truncated"):
        load_rrtn(path)


def test_missing_and_misshapen_entries_are_named(tmp_path: Path, official_state: dict) -> None:
    state = dict(official_state)
    del state["backbone.forward_2.conv_up1.weight"]
    state["conv_hr.bias"] = torch.zeros(15)
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken.pth"
    torch.save({"netG": state}, path)
    with pytest.raises(RRTNError) as info:
        load_rrtn(path)
    message = str(info.value)
    assert "backbone.forward_2.conv_up1.weight" in message
    assert "conv_hr.bias: (15,) instead of (16,)" in message
    assert "extra.weight" in message


def test_other_files_are_rejected_clearly(tmp_path: Path) -> None:
    with pytest.raises(RRTNError, match="not found") as info:
        load_rrtn(tmp_path / "nope.pth")
    assert info.value.kind is ErrorKind.NOT_FOUND
    path = tmp_path / "weights.pth"
    torch.save({"params": {"conv.weight": torch.zeros(1)}}, path)
    with pytest.raises(RRTNError, match="netG"):
        load_rrtn(path)
    torch.save({"netG": {"conv.weight": torch.zeros(1)}}, path)
    with pytest.raises(RRTNError, match="feat_extract"):
        load_rrtn(path)


def test_bad_inputs_raise_value_errors() -> None:
    model = build_rrtn(
        RRTNConfig(
            num_feat=8,
            embed_dim=32,
            depths=(1,),
            num_heads=2,
            mlp_hidden=16,
            extract_blocks=1,
            reconstruct_blocks=1,
        )
    )
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.zeros(1, 3, 1, 128, 136))
    with pytest.raises(ValueError, match="at least 128"):
        model(torch.zeros(1, 3, 1, 112, 128))
    with pytest.raises(ValueError, match="at least 3 frames"):
        model(torch.zeros(1, 2, 1, 128, 128))
    with pytest.raises(ValueError, match="1 channel"):
        model(torch.zeros(1, 3, 3, 128, 128))

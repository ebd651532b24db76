"""Reading and writing RRTN checkpoints.

Two formats are read:

- the authors' release (``rrtn_128_first.pth``, ``rrtn_128_second.pth``): ``torch.save`` of
  ``{'netG': state_dict}`` with RAFT under ``spynet.`` in the original RAFT's names;
- the project's own: a safetensors file with our state dict and the hyper-parameters in its
  metadata (written by :func:`save_rrtn`).

Files are recognised by content, not by extension. Pickled files are only ever opened with
``weights_only=True``: a file that carries code or arbitrary objects is refused, never executed.
Hyper-parameters are read off tensor shapes, so a checkpoint with other widths or depths builds
the matching network; every key and shape is checked and a mismatch is named.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.model.rrtn import RRTN, RRTNConfig, build_rrtn
from rrtn_plugin.model.swin import relative_position_index

FORMAT = "rrtn-plugin/1"

_RAFT_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^fnet\.", "feature_encoder."),
    (r"^cnet\.", "context_encoder."),
    (r"^(\w+_encoder)\.conv1\.", r"\1.convnormrelu.0."),
    (r"^(\w+_encoder)\.norm1\.", r"\1.convnormrelu.1."),
    (r"^(\w+_encoder)\.conv2\.", r"\1.conv."),
    (r"\.(layer\d\.\d)\.conv([12])\.", r".\1.convnormrelu\2.0."),
    (r"\.(layer\d\.\d)\.norm([12])\.", r".\1.convnormrelu\2.1."),
    (r"^update_block\.encoder\.convc([12])\.", r"update_block.motion_encoder.convcorr\1.0."),
    (r"^update_block\.encoder\.convf([12])\.", r"update_block.motion_encoder.convflow\1.0."),
    (r"^update_block\.encoder\.conv\.", "update_block.motion_encoder.conv.0."),
    (r"^update_block\.gru\.conv([zrq])([12])\.", r"update_block.recurrent_block.convgru\2.conv\1."),
    (r"^update_block\.mask\.0\.", "mask_predictor.convrelu.0."),
    (r"^update_block\.mask\.2\.", "mask_predictor.conv."),
)
_ALIAS = re.compile(r"^(.*\.layer\d\.0)\.norm3\.(.*)$")
"""Original RAFT registers one BatchNorm as ``norm3`` and as ``downsample.1``: same tensors."""


def load_rrtn(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> RRTN:
    """Load an RRTN checkpoint (official release or our safetensors) as an eval-mode network.

    Raises:
        RRTNError: the file is missing, unreadable, refused (pickled code), or not an RRTN
            checkpoint; the message names the file and what is missing or unexpected.
    """
    path = Path(path)
    state, metadata = _read(path)
    try:
        if metadata.get("format") == FORMAT:
            config = _config_from_metadata(metadata, path)
        else:
            state = convert_official_state_dict(state)
            config = infer_config(state)
        model = build_rrtn(config)
        _check_keys(model, state)
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError) as exc:
        raise RRTNError(f"{path}: not a usable RRTN checkpoint: {exc}") from exc
    return model.to(device).eval()


def save_rrtn(
    model: RRTN, path: str | os.PathLike[str], *, metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``model`` as safetensors with its hyper-parameters, atomically (temp file + rename).

    ``metadata`` adds free-form string fields (what it was trained on, flow source, …).
    """
    path = Path(path)
    info = {**(metadata or {}), "format": FORMAT, "config": json.dumps(asdict(model.config))}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(state, str(tmp), metadata=info)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of one of our safetensors checkpoints (empty for the official format)."""
    return _read(Path(path))[1]


def convert_official_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' ``netG`` state dict in our names.

    RAFT keys (``spynet.``) are renamed to torchvision's (``flow_net.``); the alias BatchNorm
    entries are checked to equal their twins and dropped; the Swin ``relative_position_index``
    buffers are checked against the geometry we compute, and ``attn_mask`` buffers dropped (we
    compute the mask for each input size).
    """
    if "feat_extract.conv_resblock.0.weight" not in state:
        raise RRTNError(
            "not an RRTN checkpoint: no 'feat_extract.conv_resblock.0.weight' "
            f"(found {_some(state)})"
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("spynet."):
            raft_key = key.removeprefix("spynet.")
            alias = _ALIAS.match(raft_key)
            if alias:
                twin = f"spynet.{alias[1]}.downsample.1.{alias[2]}"
                if twin not in state or not torch.equal(state[twin], value):
                    raise RRTNError(f"checkpoint entry {key} should equal {twin} but does not")
                continue
            for pattern, replacement in _RAFT_RENAMES:
                raft_key = re.sub(pattern, replacement, raft_key)
            out[f"flow_net.{raft_key}"] = value
        elif key.endswith(".attn_mask"):
            continue
        elif key.endswith(".relative_position_index"):
            side = round(value.shape[0] ** 0.5)
            if not torch.equal(value.cpu().long(), relative_position_index(side)):
                raise RRTNError(
                    f"checkpoint entry {key} is not the standard Swin "
                    f"relative-position index for {side}x{side} windows"
                )
        else:
            out[key] = value
    return out


def infer_config(state: Mapping[str, torch.Tensor]) -> RRTNConfig:
    """Read the hyper-parameters off the tensor shapes of a state dict in our names."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise RRTNError(f"checkpoint has no '{key}'")
        return tuple(state[key].shape)

    num_feat, in_plus_mask = shape("feat_extract.conv_resblock.0.weight")[:2]
    embed_dim = shape("backbone.backward_1.conv_second.weight")[0]
    prefix = "backbone.backward_1.layers."
    table = shape(f"{prefix}0.residual_group.blocks.0.attn.relative_position_bias_table")
    window = (round(table[0] ** 0.5) + 1) // 2
    if (2 * window - 1) ** 2 != table[0]:
        raise RRTNError(f"relative-position table of {table[0]} rows is not (2S-1)^2")
    offset_out = shape("deform_align.backward_1.conv_offset.6.weight")[0]
    if offset_out % 27:
        raise RRTNError(f"deform_align offset conv has {offset_out} outputs, not 27 per group")
    return RRTNConfig(
        in_channels=in_plus_mask - 1,
        num_feat=num_feat,
        extract_blocks=_count(state, r"feat_extract\.conv_resblock\.2\.(\d+)\.conv1\.weight"),
        reconstruct_blocks=_count(state, r"reconstruction\.conv_resblock\.2\.(\d+)\.conv1\.weight"),
        embed_dim=embed_dim,
        depths=tuple(
            _count(state, rf"{re.escape(prefix)}{i}\.residual_group\.blocks\.(\d+)\.norm1\.weight")
            for i in range(_count(state, rf"{re.escape(prefix)}(\d+)\.conv\.weight"))
        ),
        num_heads=table[1],
        window_size=window,
        mlp_hidden=shape(f"{prefix}0.residual_group.blocks.0.mlp.fc1.weight")[0],
        deform_groups=offset_out // 27,
    )


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a checkpoint file, whichever format it is in."""
    if not path.is_file():
        raise RRTNError(f"checkpoint not found: {path}", kind=ErrorKind.NOT_FOUND)
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = dict(handle.metadata() or {})
            return load_file(str(path)), metadata
        except (SafetensorError, OSError, ValueError) as exc:
            raise RRTNError(f"{path}: unreadable safetensors checkpoint ({exc})") from exc
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise RRTNError(
            f"{path}: refused: the file holds pickled Python objects other than tensors, which "
            "could run code when loaded; it was not loaded. Use the released checkpoint or one "
            "saved by rrtn-plugin."
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise RRTNError(
            f"{path}: not a readable checkpoint (truncated or another format): {exc}"
        ) from exc
    if isinstance(loaded, Mapping) and "netG" in loaded:
        loaded = loaded["netG"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise RRTNError(
            f"{path}: expected {{'netG': state_dict}} or a state dict of tensors, "
            f"found {type(loaded).__name__} with keys {_some(loaded)}"
        )
    return dict(loaded), {}


def _config_from_metadata(metadata: Mapping[str, str], path: Path) -> RRTNConfig:
    try:
        raw = json.loads(metadata["config"])
        known = {f.name for f in fields(RRTNConfig)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown hyper-parameters {sorted(unknown)}")
        raw["depths"] = tuple(raw.get("depths", RRTNConfig.depths))
        return RRTNConfig(**raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise RRTNError(f"{path}: bad 'config' metadata: {exc}") from exc


def _check_keys(model: RRTN, state: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({_some(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_some(unexpected)})")
    if wrong:
        problems.append(
            "wrong shapes ("
            + ", ".join(
                f"{k}: {tuple(state[k].shape)} instead of {tuple(expected[k].shape)}"
                for k in wrong[:3]
            )
            + (", …" if len(wrong) > 3 else "")
            + ")"
        )
    if problems:
        raise ValueError("entries " + "; ".join(problems))


def _count(state: Iterable[str], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m[1] for k in state if (m := regex.fullmatch(k))})


def _some(keys: Iterable[object], limit: int = 4) -> str:
    items = [str(k) for k in keys]
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "") or "nothing"

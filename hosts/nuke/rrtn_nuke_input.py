"""What an RRTN Restore node's input is, as Nuke knows it: the identity of the pixels upstream
(:func:`upstream_identity`, which keys the result) and the colour space they are in
(:func:`working_space`, :func:`script_colorspace`, from the script's OpenColorIO config)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import nuke

from rrtn_plugin.client.colour import concrete_colorspace, ocio_config
from rrtn_plugin.client.sequences import files_identity

NOT_PIXELS = {"xpos", "ypos", "selected", "label", "note_font", "note_font_size"}
NOT_PIXELS |= {"note_font_color", "tile_color", "gl_color", "hide_input", "postage_stamp"}
NOT_PIXELS |= {"postage_stamp_frame", "bookmark", "icon", "indicators", "name", "help"}
NOT_PIXELS |= {"cached", "dope_sheet", "lock_connections", "rrtn_key", "status", "panel"}
"""Knobs that move or decorate a node without changing its pixels."""
NUKE_LINEAR = "lin_rec709"
"""Nuke's own colour management works in linear sRGB primaries."""


def upstream_identity(node: nuke.Node, frames: tuple[int, int]) -> str:
    """What the input's pixels depend on: every upstream node's knob values (expressions and
    animation evaluated on each frame), the nodes inside upstream groups, the nodes that
    expressions read, and the files file knobs name; not positions, names or colours."""
    digest = hashlib.blake2b(digest_size=16)
    span = range(frames[0], frames[1] + 1)
    seen: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop(0)
        if current.fullName() in seen:
            continue
        seen.add(current.fullName())
        inputs = current.dependencies(nuke.INPUTS | nuke.HIDDEN_INPUTS)
        digest.update(f"{current.Class()} inputs={len(inputs)}\n".encode())
        for name, knob in sorted(current.knobs().items()):
            if name in NOT_PIXELS or knob.Class() in ("Tab_Knob", "Text_Knob", "PyScript_Knob"):
                continue
            digest.update(f"{name}={knob.toScript()}\n".encode())
            if knob.hasExpression() or knob.isAnimated():
                digest.update(repr([knob.getValueAt(f) for f in span]).encode())
            if isinstance(knob, nuke.File_Knob) and knob.value():
                path = str(knob.evaluate())
                digest.update(f"{path} {files_identity(path, span)}\n".encode())
        if isinstance(current, nuke.Group):
            pending += current.nodes()  # edits inside a group or gizmo change its pixels
        pending += inputs + current.dependencies(nuke.EXPRESSIONS)
    return digest.hexdigest()


def working_space() -> str:
    """The script's working space, as a colour space name (not a role): the frames are written
    raw, so they are in it."""
    root = nuke.root()
    if root["colorManagement"].value() == "OCIO":
        return script_colorspace(str(root["workingSpaceLUT"].value()))
    return NUKE_LINEAR


def script_colorspace(name: str) -> str:
    """``name`` (a role, an alias or a space) as the space it means in the script's config."""
    return concrete_colorspace(_ocio_config(), name)


def _ocio_config() -> Any:
    """The script's OpenColorIO config: ``$OCIO`` (which overrides the project setting), the
    custom config path, or the built-in config of that name under Nuke's
    ``plugins/OCIOConfigs/configs``; None in Nuke's own colour management."""
    root = nuke.root()
    if root["colorManagement"].value() != "OCIO":
        return None
    name = str(root["OCIO_config"].value())
    configs = Path(nuke.EXE_PATH).parent / "plugins" / "OCIOConfigs" / "configs"
    candidates = [configs / name / "config.ocio", configs / f"{name}.ocio"]
    return ocio_config(
        os.environ.get("OCIO")
        or (
            str(root["customOCIOConfigPath"].value())
            if name == "custom"
            else next((str(p) for p in candidates if p.is_file()), f"ocio://{name}")
        )
    )

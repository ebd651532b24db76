"""The image sequences the add-on restores: an Image node in the compositor or an image strip
in the sequencer (:class:`Source`, :func:`find_source`), and what the server calls their
colour spaces (:data:`COLORSPACES`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import bpy

from rrtn_plugin.client.library import sequence_pattern
from rrtn_plugin.client.sequences import exr_size
from rrtn_plugin.errors import RRTNError

from .scene import EditorKind, compositor_tree, strips

COLORSPACES = {
    "Linear Rec.709": "lin_rec709",
    "Linear": "lin_rec709",
    "sRGB": "srgb_tx",
    "ACEScg": "ACEScg",
    "ACES2065-1": "ACES2065-1",
    "Linear Rec.2020": "lin_rec2020",
    "Rec.1886": "Gamma 2.4 Encoded Rec.709",
}
"""Blender's colour space names → the server's (OpenColorIO studio config) names."""
Kind = Literal["node", "strip"]


@dataclass(frozen=True)
class Source:
    """An image sequence in the scene, by name (undo re-creates Blender's data, so nothing
    holds a pointer to it): an Image node or an image strip, its file ``pattern`` (####, as
    Blender keeps it, maybe ``//``-relative), its file numbers, and the scene frame of
    ``first``."""

    kind: Kind
    name: str
    title: str
    pattern: str
    first: int
    last: int
    scene_start: int
    colorspace: str
    channel: int = 0
    scene: str = ""

    def files(self) -> str:
        """The file pattern as an absolute path."""
        return bpy.path.abspath(self.pattern)

    def inputs(self) -> dict[str, object]:
        """What a result made from this source depends on (see :func:`what_changed`)."""
        return {
            "files": self.pattern,
            "numbers": [self.first, self.last],
            "scene_frame": self.scene_start,
            "colorspace": self.colorspace,
        }


def find_source(
    scene: bpy.types.Scene,
    *,
    node_name: str = "",
    strip_name: str = "",
    prefer: EditorKind = "",
) -> Source:
    """The Image node or image strip named, else the active one of ``prefer``'s kind, else
    (from a script) the compositor's active Image node or the sequencer's active strip."""
    tree = compositor_tree(scene, create=False)
    node: Any = None
    if node_name:
        node = tree.nodes.get(node_name) if tree else None
        if not isinstance(node, bpy.types.CompositorNodeImage) or node.image is None:
            raise RRTNError(f"the compositor has no Image node '{node_name}' with a sequence")
    elif not strip_name and prefer != "strip" and tree is not None:
        node = tree.nodes.active
        if prefer == "node" and not isinstance(node, bpy.types.CompositorNodeImage):
            raise RRTNError("select an Image node holding an image sequence")
    if isinstance(node, bpy.types.CompositorNodeImage) and node.image:
        image = node.image
        if image.source != "SEQUENCE":
            raise RRTNError(f"{image.name} is not an image sequence")
        pattern = sequence_pattern(image.filepath)
        return Source(
            "node",
            node.name,
            sequence_title(pattern, image.name),
            pattern,
            node.frame_offset + 1,
            node.frame_offset + node.frame_duration,
            node.frame_start,
            colorspace_name(image.colorspace_settings),
            scene=scene.name,
        )
    editor = scene.sequence_editor
    strip: Any
    if strip_name:
        strip = next((s for s in strips(scene) if s.name == strip_name), None)
        if strip is None or strip.type != "IMAGE":
            raise RRTNError(f"the sequencer has no image strip '{strip_name}'")
    else:
        strip = editor.active_strip if editor else None
        if strip is None or strip.type != "IMAGE":  # ImageStrip, ImageSequence before 4.4
            raise RRTNError("select an Image node with a sequence, or an image strip")
    numbers = [int(re.findall(r"\d+", e.filename)[-1]) for e in strip.elements]
    directory = str(strip.directory)
    pattern = sequence_pattern(directory.rstrip("/\\") + "/" + strip.elements[0].filename)
    return Source(
        "strip",
        strip.name,
        sequence_title(pattern, strip.name),
        pattern,
        min(numbers),
        max(numbers),
        int(strip.frame_start),
        colorspace_name(strip.colorspace_settings),
        int(strip.channel),
        scene.name,
    )


def sequence_title(pattern: str, fallback: str) -> str:
    """What names a result's files: the sequence's name without frame number and extension."""
    return re.sub(r"[._-]*[#@]+.*$", "", os.path.basename(pattern)) or fallback


def colorspace_name(settings: Any) -> str:
    return str(settings.name) if settings is not None else ""


def frame_size(path: Path) -> tuple[int, int]:
    """A frame file's width and height (Blender gives none for multi-layer EXRs)."""
    if path.suffix.lower() == ".exr":
        return exr_size(path)
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        size: Any = image.size  # fake-bpy-module types it as a bare bpy_prop_array
        return int(size[0]), int(size[1])
    finally:
        bpy.data.images.remove(image)


def server_colorspace(source: Source, chosen: str = "") -> str:
    """The server's name for the source's colour space: ``chosen``, else its counterpart."""
    colorspace = chosen or COLORSPACES.get(source.colorspace, "")
    if not colorspace:
        raise RRTNError(
            f"colour space '{source.colorspace}' has no counterpart on the "
            "server: give the operator's Colour space (e.g. lin_rec709)"
        )
    return colorspace

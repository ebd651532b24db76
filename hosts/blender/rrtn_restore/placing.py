"""A restored sequence put in the scene as data any Blender reads without this add-on: from
the compositor a built-in node group "RRTN Restore" in the source Image node's place, whose
inner Image node reads the restored frames; from the sequencer an image strip in the channel
above the source strip. Both at the source's scene frames, black outside the range."""

from __future__ import annotations

import os
from typing import Any

import bpy

from rrtn_plugin.client.library import frame_path
from rrtn_plugin.client.staleness import what_changed
from rrtn_plugin.errors import RRTNError

from .scene import absolute, add_socket, compositor_tree, new_tree, strips
from .sources import COLORSPACES, Source
from .staleness import LABEL, mark, recipe_of

SOCKETS = {"VALUE": "NodeSocketFloat", "VECTOR": "NodeSocketVector", "RGBA": "NodeSocketColor"}


def place_result(
    source: Source, recipe: dict[str, Any], *, scene: bpy.types.Scene | None = None
) -> tuple[bpy.types.Scene, list[str]]:
    """Put the result of ``recipe`` in ``source``'s scene (looked up again by name: an undo
    may have re-created it), as a node group in the compositor or a strip in the sequencer;
    returns the scene and warnings."""
    scene = scene or bpy.data.scenes.get(source.scene)
    if scene is None:
        raise RRTNError(f"the scene '{source.scene}' is gone: the result was not put in")
    recipe = {**recipe, "stale": []}
    warnings = []
    if not _holds(scene, source):
        warnings.append(f"the {source.kind} '{source.name}' is gone: its result stands alone")
    if source.kind == "node":
        node, image = add_result_node(scene, source, recipe)
        item: Any = node
        if image.type == "MULTILAYER" and COLORSPACES.get(source.colorspace) != "lin_rec709":
            warnings.append(
                "Blender reads multi-layer EXRs as linear Rec.709: restore "
                "without AOVs to keep the plate's colour space"
            )
    else:
        item = add_result_strip(scene, source, recipe)
    reasons = what_changed(recipe["inputs"], source.inputs(), absolute)
    if reasons:
        warnings.append(f"the result is out of date already: {'; '.join(reasons)}")
    mark(item, recipe, reasons)
    return scene, warnings


def _holds(scene: bpy.types.Scene, source: Source) -> bool:
    if source.kind == "strip":
        return any(s.name == source.name for s in strips(scene))
    tree = compositor_tree(scene, create=False)
    return tree is not None and tree.nodes.get(source.name) is not None


def add_result_node(
    scene: bpy.types.Scene, source: Source, recipe: dict[str, Any]
) -> tuple[bpy.types.CompositorNodeGroup, bpy.types.Image]:
    """A built-in node group reading the restored frames, in the source Image node's place
    (or the existing result of the same source, given the new frames); returns it and the
    restored sequence's image."""
    first, last = recipe["frames"]
    image = _load_sequence(recipe["result"], first, f"RRTN {source.title}", source.colorspace)
    inner = new_tree(f".RRTN {source.title}")
    add_socket(inner, "Plate", "INPUT", "NodeSocketColor")  # what a muted group passes on
    inner.nodes.new("NodeGroupInput")
    read = inner.nodes.new("CompositorNodeImage")
    assert isinstance(read, bpy.types.CompositorNodeImage)
    read.name, read.image = "Restored", image
    read.frame_start = source.scene_start + first - source.first
    # One frame longer than the result: Blender holds the last frame of a sequence after its
    # end, and the file after the last is absent, so the node is black outside the range.
    read.frame_duration = last - first + 2
    read.frame_offset = first - 1
    # The picture is "Combined" in a multi-layer EXR, "Image" otherwise; its alpha rides along.
    outputs = {
        ("Image" if s.name in ("Combined", "Image") else s.name): s
        for s in read.outputs or ()
        if s.name != "Alpha"
    }
    for name, socket in outputs.items():
        add_socket(inner, name, "OUTPUT", SOCKETS[socket.type])
    output = inner.nodes.new("NodeGroupOutput")
    for name, socket in outputs.items():
        inner.links.new(socket, output.inputs[name])

    tree = compositor_tree(scene)
    assert tree is not None
    plate = tree.nodes.get(source.name)
    node = next((n for n in tree.nodes if recipe_of(n).get("source") == source.name), None)
    if isinstance(node, bpy.types.CompositorNodeGroup):  # restored again: same place, links
        old = node.node_tree
        node.node_tree = inner
        if old is not None and old.users == 0:
            bpy.data.node_groups.remove(old)
    else:
        made = tree.nodes.new("CompositorNodeGroup")
        assert isinstance(made, bpy.types.CompositorNodeGroup)
        node = made
        node.node_tree = inner
        node.name = node.label = LABEL
        restored = node.outputs["Image"]
        if plate is not None:
            node.location = (plate.location.x + 250, plate.location.y)
            for link in [link for link in tree.links if link.from_node == plate]:
                if link.from_socket is not None and link.from_socket.type == "RGBA":
                    tree.links.new(restored, link.to_socket)
        else:
            sink = next(
                n
                for n in tree.nodes
                if n.bl_idname in ("NodeGroupOutput", "CompositorNodeComposite")
            )
            if not sink.inputs[0].is_linked:
                tree.links.new(restored, sink.inputs[0])
    if plate is not None and not node.inputs["Plate"].is_linked:
        tree.links.new(plate.outputs[0], node.inputs["Plate"])
    return node, image


def add_result_strip(
    scene: bpy.types.Scene, source: Source, recipe: dict[str, Any]
) -> bpy.types.Strip:
    """An image strip of the restored frames at the source strip's frames, in the channel
    above it (or in the place of the existing result of the same source)."""
    editor = scene.sequence_editor
    assert editor is not None
    first, last = recipe["frames"]
    start = source.scene_start + first - source.first
    old = next((s for s in editor.strips if recipe_of(s).get("source") == source.name), None)
    if old is not None:
        channel = int(old.channel)
        editor.strips.remove(old)
    else:
        channel = _free_channel(scene, source.channel, start, start + last - first + 1)
    files = bpy.path.abspath(recipe["result"])
    strip: Any = editor.strips.new_image(
        name=f"{source.name} RRTN",
        filepath=str(frame_path(files, first)),
        channel=channel,
        frame_start=start,
    )
    for number in range(first + 1, last + 1):
        strip.elements.append(frame_path(files, number).name)
    strip.directory = os.path.dirname(recipe["result"]) + "/"  # relative when the result is
    strip.blend_type = "REPLACE"
    strip.colorspace_settings.name = source.colorspace
    assert isinstance(strip, bpy.types.Strip)
    return strip


def _free_channel(scene: bpy.types.Scene, above: int, start: int, end: int) -> int:
    """The lowest channel above ``above`` with nothing between frames ``start`` and ``end``."""
    editor = scene.sequence_editor
    placed = list(editor.strips) if editor else []
    for channel in range(above + 1, 129):
        if not any(
            s.channel == channel and s.frame_final_start < end and start < s.frame_final_end
            for s in placed
        ):
            return channel
    raise RRTNError(f"no free channel above channel {above} for frames {start}-{end - 1}")


def _load_sequence(pattern: str, first: int, name: str, colorspace: str) -> bpy.types.Image:
    """The image sequence ``pattern`` (as the .blend keeps it) from file number ``first``."""
    image = bpy.data.images.load(
        str(frame_path(bpy.path.abspath(pattern), first)), check_existing=False
    )
    image.name = name
    image.source = "SEQUENCE"
    image.filepath = str(frame_path(pattern, first)) if pattern.startswith("//") else image.filepath
    settings: Any = image.colorspace_settings  # its names are the OCIO config's, not typed
    settings.name = colorspace
    return image

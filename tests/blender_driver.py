"""Runs inside Blender's Python (bpy as a module): installs the extension zip as a user would,
builds a compositor reading a plate sequence, runs "Restore with RRTN" on it and renders the
compositor to EXR; prints a report.

    python blender_driver.py EXTENSION_ZIP PLATE_FIRST_FILE FIRST LAST HANDLES OUT_DIR
"""

import json
import os
import sys
from pathlib import Path

import bpy


def main(extension: str, plate: str, first: int, last: int, handles: int, out: str) -> dict:
    installed = bpy.ops.extensions.package_install_files(
        filepath=extension, repo="user_default", enable_on_install=True
    )
    rrtn_restore = sys.modules["bl_ext.user_default.rrtn_restore"]
    report = {
        "version": list(bpy.app.version),
        "installed": sorted(installed),
        "client_from": sys.modules["rrtn_plugin.client.library"].__file__,
    }
    scene = bpy.context.scene
    tree = rrtn_restore.compositor_tree(scene)
    image = bpy.data.images.load(plate, check_existing=False)
    image.source = "SEQUENCE"
    source = tree.nodes.new("CompositorNodeImage")
    source.name, source.image = "Plate", image
    source.frame_start, source.frame_duration, source.frame_offset = 1001, 10, 1000
    sink = next(
        n for n in tree.nodes if n.bl_idname in ("NodeGroupOutput", "CompositorNodeComposite")
    )
    tree.links.new(source.outputs[0], sink.inputs[0])
    try:
        bpy.ops.rrtn.restore(node_name="Nope")
    except RuntimeError as exc:
        report["error"] = str(exc)
    report["result"] = sorted(
        bpy.ops.rrtn.restore(
            node_name="Plate", first=first, last=last, handles=handles, colorspace="lin_rec709"
        )
    )
    node = next(n for n in tree.nodes if n.bl_idname == "CompositorNodeRRTNRestore")
    report["outputs"] = [s.name for s in node.outputs]
    report["sink_from"] = sink.inputs[0].links[0].from_node.bl_idname
    report["restored"] = bpy.path.abspath(node.node_tree.nodes["Restored"].image.filepath)

    render = scene.render
    render.resolution_x, render.resolution_y = rrtn_restore.frame_size(Path(plate))
    render.resolution_percentage = 100
    settings = render.image_settings
    settings.file_format, settings.color_depth, settings.exr_codec = "OPEN_EXR", "32", "ZIP"
    settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "Standard"
    for frame in range(first - 1, last + 2):  # one frame either side of the range too
        scene.frame_set(frame)
        render.filepath = os.path.join(out, f"render.{frame}.exr")
        bpy.ops.render.render(write_still=True)
    tree.links.new(node.outputs["rrtn_mask"], sink.inputs[0])
    scene.frame_set(first + 1)
    render.filepath = os.path.join(out, "mask.exr")
    bpy.ops.render.render(write_still=True)

    # An image strip in the sequencer as the source: the whole strip is restored.
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_image("Plate strip", plate, channel=1, frame_start=1)
    for number in range(1002, 1011):
        strip.elements.append(os.path.basename(plate).replace("1001", str(number)))
    editor.active_strip = strip
    tree.nodes.active = node  # not an Image node: the operator falls back to the strip
    report["strip_result"] = sorted(bpy.ops.rrtn.restore(colorspace="lin_rec709"))
    restored = [n for n in tree.nodes if n.bl_idname == "CompositorNodeRRTNRestore"]
    read = restored[-1].node_tree.nodes["Restored"]
    report["strip_read"] = [read.frame_start, read.frame_duration, read.frame_offset]
    return report


if __name__ == "__main__":
    extension, plate, first, last, handles, out = sys.argv[1:7]
    print(
        "RRTN-REPORT "
        + json.dumps(main(extension, plate, int(first), int(last), int(handles), out))
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # bpy 4.5 hangs at interpreter exit after rendering an image sequence

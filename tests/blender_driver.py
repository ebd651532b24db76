"""Runs inside Blender's Python (bpy as a module) for tests/test_host_blender*.py; prints one
``RRTN-REPORT {json}`` line.

    python blender_driver.py SCENARIO ARGS_JSON

Scenarios:

- ``restore``: installs the extension zip as a user would, builds a compositor reading a plate
  sequence in a saved project, runs "Restore with RRTN" on it, renders the compositor, makes
  the result out of date and up to date again, then restores an image strip in a second
  scene's sequencer; saves the .blend.
- ``render``: without the extension (a fresh user folder, nothing installed: what a farm or
  ``--factory-startup`` has), opens a .blend and renders scenes' frames.
- ``farm``: writes a farm job for the plate, once without rrtn-plugin on PATH, once with it.
- ``farm_load``: loads the farm's frames into the scene and saves the .blend.
- ``validate``: runs Blender's own extension validator (``blender --command extension
  validate``) on each path given.
"""

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import bpy

BLENDER_5 = bpy.app.version >= (5, 0, 0)


def install(extension):
    installed = bpy.ops.extensions.package_install_files(
        filepath=extension, repo="user_default", enable_on_install=True
    )
    assert sorted(installed) == ["FINISHED"], installed
    return sys.modules["bl_ext.user_default.rrtn_restore"]


def error_of(call):
    try:
        call()
    except (RuntimeError, TypeError) as exc:  # TypeError: a property value Blender refuses
        return str(exc)
    return None


def sink_of(tree):
    return next(
        n for n in tree.nodes if n.bl_idname in ("NodeGroupOutput", "CompositorNodeComposite")
    )


def render_settings(scene, size):
    render = scene.render
    render.resolution_x, render.resolution_y = size
    render.resolution_percentage = 100
    settings = render.image_settings
    settings.file_format, settings.color_depth, settings.exr_codec = "OPEN_EXR", "32", "ZIP"
    settings.color_mode = "RGBA"
    scene.view_settings.view_transform = "Standard"


def plate_scene(rrtn, plate_file, size):
    """The scene "Comp": a compositor whose Image node "Plate" shows files 1001-1010 at scene
    frames 1001-1010."""
    scene = bpy.context.scene
    scene.name = "Comp"
    render_settings(scene, size)
    tree = rrtn.scene.compositor_tree(scene)
    image = bpy.data.images.load(plate_file, check_existing=False)
    image.source = "SEQUENCE"
    plate = tree.nodes.new("CompositorNodeImage")
    plate.name, plate.image = "Plate", image
    plate.frame_start, plate.frame_duration, plate.frame_offset = 1001, 10, 1000
    tree.links.new(plate.outputs[0], sink_of(tree).inputs[0])
    return scene, tree, plate


def render(scene, frame, path):
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True, scene=scene.name)


def node_state(rrtn, node):
    recipe = rrtn.staleness.recipe_of(node)
    return {"mute": node.mute, "label": node.label, "stale": recipe.get("stale")}


class Layout:
    """Records what a panel draws: labels, and operator buttons with the properties set."""

    def __init__(self):
        self.drawn, self.alert = [], False

    def label(self, text="", icon="NONE"):
        self.drawn.append(["label", text])

    def operator(self, idname, text=""):
        properties = SimpleNamespace()
        self.drawn.append(["operator", idname, text, properties])
        return properties

    def column(self):
        return self

    def report(self):
        return [
            [*d[:3], {k: sorted(v) if isinstance(v, set) else v for k, v in vars(d[3]).items()}]
            if d[0] == "operator"
            else d
            for d in self.drawn
        ]


def panel(rrtn, item, kind):
    layout = Layout()
    rrtn.ui.draw_panel(layout, SimpleNamespace(scene=bpy.context.scene), item, kind)
    return layout.report()


def entries_appender(entries):
    return lambda idname, **_: entries.append(idname)


KNOBS = ("repair_mode", "repair_strength", "tone_guard", "cuts")


def knobs(rrtn):
    """The restore knobs as Blender registered them on both operators, and the dialogs'
    properties."""
    out = {}
    for operator in ("restore", "farm_job"):
        props = getattr(bpy.ops.rrtn, operator).get_rna_type().properties
        out[operator] = {}
        for name in KNOBS:
            prop = props[name]
            described = {"name": prop.name, "default": prop.default, "type": prop.type}
            if prop.type == "ENUM":
                described["items"] = [[i.identifier, i.description] for i in prop.enum_items]
            if prop.type == "FLOAT":
                described |= {"range": [prop.hard_min, prop.hard_max], "subtype": prop.subtype}
            out[operator][name] = described
    drawn = {}
    for name, cls in (
        ("restore", rrtn.operators.RRTN_OT_restore),
        ("farm_job", rrtn.farm.RRTN_OT_farm_job),
    ):
        shown = []
        layout = SimpleNamespace(prop=lambda data, prop_name, shown=shown: shown.append(prop_name))
        dialog = SimpleNamespace(layout=layout)
        dialog.draw_settings = lambda names, dialog=dialog: (
            rrtn.operators.RestoreSettings.draw_settings(dialog, names)
        )
        cls.draw(dialog, bpy.context)
        drawn[name] = shown
    out["dialog"] = drawn
    return out


def rules(rrtn, project):
    """The add-on's rules that need no Blender, on a few inputs."""
    from rrtn_plugin.client.farm import farm_command, find_program  # the extension's wheel
    from rrtn_plugin.client.staleness import what_changed
    from rrtn_plugin.errors import RRTNError

    blend = str(Path(project) / "shot.blend")
    out = {}
    out["beside"] = str(rrtn.preferences.result_root("", "", blend))
    out["configured"] = str(rrtn.preferences.result_root("/mnt/shared/rrtn", "/local/cache", blend))
    out["environment"] = str(rrtn.preferences.result_root("", "/mnt/farm", blend))
    out["relative"] = str(rrtn.preferences.result_root("//../cache", "", blend))
    for name, call in (
        ("unsaved", lambda: rrtn.preferences.result_root("", "", "")),
        ("unsaved_relative", lambda: rrtn.preferences.result_root("//x", "", "")),
        ("no_program", lambda: find_program(path=str(Path(project) / "nothing"))),
    ):
        try:
            call()
        except RRTNError as exc:
            out[name] = str(exc)
    out["inside"] = rrtn.preferences.blender_path(
        Path(project) / "rrtn_cache" / "a.####.exr", blend
    )
    out["outside"] = rrtn.preferences.blender_path("/mnt/shared/a.####.exr", blend)
    out["sibling"] = rrtn.preferences.blender_path(Path(project + "2") / "a.exr", blend)
    inputs = {"files": "//p/a.####.exr", "numbers": [1, 5], "scene_frame": 1, "colorspace": "sRGB"}
    same = {**inputs, "files": str(Path(project) / "p" / "a.####.exr")}
    resolve = lambda p: os.path.normpath(p.replace("//", project + "/", 1))  # noqa: E731
    out["same"] = what_changed(inputs, same, resolve)
    out["changed"] = what_changed(
        inputs, {**inputs, "numbers": [1, 6], "colorspace": "Linear Rec.709"}, resolve
    )
    out["command"] = farm_command(
        "rrtn-plugin",
        Path("/b"),
        "/p/a.####.exr",
        "/o/a.####.exr",
        first=3,
        last=9,
        chunk=4,
        name="RRTN restore a",
        aovs=["repair", "mask"],
        colorspace="lin_rec709",
        passes=2,
        model_file="/m.safetensors",
        repair_mode="defects",
        repair_strength=0.5,
        tone_guard="keep",
        cuts=False,
    )
    # Which editors offer the operator: compositor and sequencer, scripts; not other node trees.
    scene = bpy.context.scene
    spaces = {
        "compositor": SimpleNamespace(type="NODE_EDITOR", tree_type="CompositorNodeTree"),
        "shader": SimpleNamespace(type="NODE_EDITOR", tree_type="ShaderNodeTree"),
        "geometry": SimpleNamespace(type="NODE_EDITOR", tree_type="GeometryNodeTree"),
        "sequencer": SimpleNamespace(type="SEQUENCE_EDITOR"),
        "viewport": SimpleNamespace(type="VIEW_3D"),
        "console": SimpleNamespace(type="CONSOLE"),
        "script": None,
    }
    out["poll"] = {
        name: rrtn.operators.RRTN_OT_restore.poll(SimpleNamespace(space_data=space, scene=scene))
        for name, space in spaces.items()
    }
    drawn = {}
    for name, space in spaces.items():
        entries: list = []
        layout = SimpleNamespace(separator=lambda: None, operator=entries_appender(entries))
        rrtn.ui.node_menu(SimpleNamespace(layout=layout), SimpleNamespace(space_data=space))
        drawn[name] = entries
    out["node_menu"] = drawn
    return out


def restore_scenario(args):
    rrtn = install(args["extension"])
    rrtn.CHECK_IN_BACKGROUND = True  # check as in a UI session
    project = Path(args["project"])
    report = {
        "version": list(bpy.app.version),
        "client_from": sys.modules["rrtn_plugin.client.library"].__file__,
        "bl_options": sorted(rrtn.operators.RRTN_OT_restore.bl_options),
        "rules": rules(rrtn, str(project)),
        "knobs": knobs(rrtn),
    }
    first, last, handles = args["first"], args["last"], args["handles"]
    plate_file = str(project / "plates" / "plate.1001.exr")
    out = Path(args["out"])

    scene, tree, plate = plate_scene(rrtn, plate_file, args["size"])
    image, sink = plate.image, sink_of(tree)
    render(
        scene, first, out / "plate_direct.exr"
    )  # the plate's file `first`, as the compositor shows it
    restore = dict(node_name="Plate", first=first, last=last, handles=handles)
    report["unsaved"] = error_of(lambda: bpy.ops.rrtn.restore(**restore, colorspace="lin_rec709"))
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "shot.blend"))  # paths become //
    report["plate_path"] = image.filepath
    report["error"] = error_of(lambda: bpy.ops.rrtn.restore(node_name="Nope"))
    report["knob_error"] = error_of(lambda: bpy.ops.rrtn.restore(repair_mode="everything"))
    report["result"] = sorted(bpy.ops.rrtn.restore(**restore, colorspace="lin_rec709"))
    node = tree.nodes["RRTN Restore"]
    node_name = node.name
    restored = node.node_tree.nodes["Restored"]
    report["node"] = {
        "type": node.bl_idname,
        "outputs": [s.name for s in node.outputs],
        "inputs": [s.name for s in node.inputs],
        "plate_from": node.inputs["Plate"].links[0].from_node.name,
        "sink_from": sink.inputs[0].links[0].from_node.name,
        "image": restored.image.filepath,
        "read": [restored.frame_start, restored.frame_duration, restored.frame_offset],
        "recipe": rrtn.staleness.recipe_of(node),
        **node_state(rrtn, node),
    }
    report["panel"] = {"fresh": panel(rrtn, node, "node"), "plate": panel(rrtn, plate, "node")}
    for frame in range(first - 1, last + 2):  # one frame either side of the range too
        render(scene, frame, out / f"comp.{frame}.exr")
    tree.links.new(node.outputs["rrtn_mask"], sink.inputs[0])
    render(scene, first + 1, out / "mask.exr")
    tree.links.new(node.outputs["Image"], sink.inputs[0])

    # Out of date: the plate node now reads other files at these frames (the depsgraph handler
    # sees it); the group is muted, so the plate shows through instead of old restored frames.
    plate.frame_offset = 999
    bpy.context.view_layer.update()
    report["moved"] = node_state(rrtn, node)
    report["panel"]["stale"] = panel(rrtn, node, "node")
    render(scene, first + 1, out / "stale.exr")  # file `first` again, unrestored
    plate.frame_offset = 1000
    bpy.context.view_layer.update()
    report["back"] = node_state(rrtn, node)
    # A plate file rewritten in place: "Check RRTN Results" reads the files' dates.
    touched = project / "plates" / f"plate.{first}.exr"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    bpy.ops.rrtn.check()
    report["rewritten"] = node_state(rrtn, node)
    bpy.context.view_layer.update()  # a later change does not forget it
    report["rewritten_kept"] = node_state(rrtn, node)
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    bpy.ops.rrtn.check()
    report["unrewritten"] = node_state(rrtn, node)
    # Out of date, then restored again (same files and settings: the cached frames): the same
    # node, up to date, showing its frames again.
    for colorspace in ("Non-Color", "Linear Rec.709"):
        image.colorspace_settings.name = colorspace
        bpy.context.view_layer.update()
        report.setdefault("recolored", []).append(node_state(rrtn, node))
        report.setdefault("again", []).append(
            sorted(bpy.ops.rrtn.restore(**restore, colorspace="lin_rec709"))
        )
        report.setdefault("again_state", []).append(node_state(rrtn, node))
    report["groups"] = [n.name for n in tree.nodes if n.bl_idname == "CompositorNodeGroup"]

    bpy.ops.wm.save_mainfile()

    # The sequencer: an image strip restored into the edit. In the same scene, saved as another
    # .blend: rendering a second scene in this process renders its sequencer black, in 4.5 and
    # 5.0 alike (a farm renders one scene per process). The sequencer's output replaces the
    # compositor's.
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_image("Plate strip", plate_file, channel=2, frame_start=1)
    for number in args["strip_files"][1:]:
        strip.elements.append(f"plate.{number}.exr")
    editor.active_strip = strip
    tree.nodes.active = plate
    # From the sequencer the active strip is the source, whatever the compositor holds.
    report["prefer"] = {
        kind or "script": rrtn.sources.find_source(scene, prefer=kind).kind
        for kind in ("node", "strip", "")
    }
    chosen = dict(repair_mode="defects", repair_strength=0.5, tone_guard="keep", cuts=False)
    report["strip_result"] = sorted(
        bpy.ops.rrtn.restore(strip_name=strip.name, handles=1, **chosen)
    )
    result = next(s for s in editor.strips if s != strip)
    report["strip"] = {
        "name": result.name,
        "type": result.type,
        "channel": result.channel,
        "frames": [result.frame_final_start, result.frame_final_end],
        "directory": result.directory,
        "files": [e.filename for e in result.elements],
        "blend_type": result.blend_type,
        "recipe": rrtn.staleness.recipe_of(result),
    }
    for frame in range(1, len(args["strip_files"]) + 2):  # and the frame after the strips
        render(scene, frame, out / f"edit.{frame}.exr")
    # The strip moved in time: its result is out of date, muted, the plate shows through.
    strip.frame_start = 2
    bpy.context.view_layer.update()
    report["strip_moved"] = {
        "mute": result.mute,
        "stale": rrtn.staleness.recipe_of(result)["stale"],
    }
    strip.frame_start = 1
    bpy.context.view_layer.update()
    report["strip_back"] = {"mute": result.mute, "stale": rrtn.staleness.recipe_of(result)["stale"]}
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "edit.blend"))

    # A plate file rewritten while the .blend was closed: opening it finds that.
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    bpy.ops.wm.open_mainfile(filepath=str(project / "shot.blend"))
    reopened = rrtn.scene.compositor_tree(bpy.context.scene)
    report["reopened"] = node_state(rrtn, reopened.nodes[node_name])
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return report


def render_scenario(args):
    """No extension (what a farm worker or --factory-startup has): opens each .blend and
    renders frames of its scene."""
    report = {"version": list(bpy.app.version), "node_types": {}, "strips": {}}
    for blend, frames, prefix in args["renders"]:
        bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
        scene = bpy.context.scene
        trees = [getattr(scene, "compositing_node_group" if BLENDER_5 else "node_tree", None)]
        report["node_types"][prefix] = sorted(
            {n.bl_idname for t in trees if t is not None for n in t.nodes}
        )
        editor = scene.sequence_editor
        report["strips"][prefix] = sorted(
            [s.name, s.directory] for s in (editor.strips if editor else ())
        )
        for frame in frames:
            render(scene, frame, Path(args["out"]) / f"{prefix}.{frame}.exr")
    report["addons"] = sorted(m for m in sys.modules if "rrtn" in m)
    return report


def farm_scenario(args):
    rrtn = install(args["extension"])
    project = Path(args["project"])
    plate_scene(rrtn, str(project / "plates" / "plate.1001.exr"), args["size"])
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "shot.blend"))
    job = dict(node_name="Plate", first=args["first"], last=args["last"], passes=1)
    job.update(colorspace="lin_rec709", chunk=args["last"] - args["first"] + 1)  # one task
    report = {}
    os.environ["PATH"] = args["path_without"]
    report["without"] = error_of(lambda: bpy.ops.rrtn.farm_job(**job))
    os.environ["PATH"] = args["path_with"]
    report["with"] = sorted(bpy.ops.rrtn.farm_job(**job))
    report["pending"] = json.loads(bpy.context.scene[rrtn.farm.FARM])
    report["not_yet"] = sorted(bpy.ops.rrtn.farm_load())
    bpy.ops.wm.save_mainfile()
    return report


def farm_load_scenario(args):
    rrtn = install(args["extension"])
    bpy.ops.wm.open_mainfile(filepath=args["blend"])
    report = {"loaded": sorted(bpy.ops.rrtn.farm_load())}
    scene = bpy.context.scene
    report["pending"] = json.loads(scene[rrtn.farm.FARM])
    tree = rrtn.scene.compositor_tree(scene)
    nodes = [n for n in tree.nodes if rrtn.staleness.recipe_of(n)]
    report["results"] = [[n.name, rrtn.staleness.recipe_of(n)["result"]] for n in nodes]
    report["sink_from"] = sink_of(tree).inputs[0].links[0].from_node.name
    bpy.ops.wm.save_mainfile()
    return report


def validate_scenario(args):
    from bl_pkg.bl_extension_cli import cli_extension_handler  # blender --command extension

    return {path: cli_extension_handler(["validate", path]) for path in args["paths"]}


SCENARIOS = {
    "restore": restore_scenario,
    "render": render_scenario,
    "farm": farm_scenario,
    "farm_load": farm_load_scenario,
    "validate": validate_scenario,
}

if __name__ == "__main__":
    report = SCENARIOS[sys.argv[1]](json.loads(sys.argv[2]))
    print("RRTN-REPORT " + json.dumps(report))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # bpy 4.5 hangs at interpreter exit after rendering an image sequence

"""RRTN Restore for Blender 4.2+ (tested on 4.5 LTS and 5.0): old-film restoration of an image
sequence through an rrtn-plugin server, back as an "RRTN Restore" compositor node.

"Restore with RRTN" (compositor: Node menu, on the active Image node; sequencer: Strip menu, on
the active image strip) sends the sequence's files for the chosen frames plus handles to the
server from a worker thread (modal: progress in the status bar, Esc cancels; blocking when
run from a script or in the background), then adds a node group whose inner Image node reads
the restored frames (exactly the chosen range, at the same scene frames) with outputs ``Image``
and one per AOV (``rrtn_mask`` …). When the source was an Image node, its links now come from
the restored node. Everything that is not Blender's API is in :mod:`rrtn_plugin.client.host_job`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import bpy

from rrtn_plugin.client.host_job import (
    HostSettings,
    JobResult,
    JobThread,
    RestoreJob,
    default_cache_root,
    exr_size,
    files_identity,
    run_job,
)
from rrtn_plugin.client.library import frame_path, sequence_pattern
from rrtn_plugin.errors import RRTNError

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
SOCKETS = {"VALUE": "NodeSocketFloat", "VECTOR": "NodeSocketVector", "RGBA": "NodeSocketColor"}
BLENDER_5 = bpy.app.version >= (5, 0, 0)
USER_ERRORS = (RRTNError, ValueError)
"""What the operator reports to the user (ValueError: a path the client library refuses)."""
Outcome = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


@dataclass(frozen=True)
class Source:
    """An image sequence: file ``pattern`` (####), file numbers, and the scene frame of
    ``first``."""

    name: str
    pattern: str
    first: int
    last: int
    scene_start: int
    colorspace: str
    node: bpy.types.CompositorNodeImage | None = None


class RRTNPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__
    server: bpy.props.StringProperty(name="Server", default=HostSettings().server)
    token: bpy.props.StringProperty(name="Token", subtype="PASSWORD")
    cache: bpy.props.StringProperty(
        name="Cache folder", subtype="DIR_PATH", default=str(default_cache_root() / "blender")
    )

    def draw(self, context: bpy.types.Context) -> None:
        for name in ("server", "token", "cache"):
            self.layout.prop(self, name)


class RRTNRestoreNode(bpy.types.CompositorNodeCustomGroup):
    """The restored frames as a compositor node; its inner tree is made by the operator."""

    bl_idname = "CompositorNodeRRTNRestore"
    bl_label = "RRTN Restore"


class RRTN_OT_restore(bpy.types.Operator):  # noqa: N801 - Blender's naming
    """Restore an image sequence with RRTN on an rrtn-plugin server"""

    bl_idname = "rrtn.restore"
    bl_label = "Restore with RRTN"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 - annotations are Blender's properties

    node_name: bpy.props.StringProperty(
        name="Image node",
        description="In the scene's compositor; empty: the active node, "
        "else the active image strip",
    )
    first: bpy.props.IntProperty(
        name="First", description="First file number (with Last 0: the whole sequence)"
    )
    last: bpy.props.IntProperty(name="Last")
    handles: bpy.props.IntProperty(name="Handles", default=8, min=0)
    passes: bpy.props.IntProperty(name="Passes", description="0: the model's default", min=0)
    model: bpy.props.StringProperty(name="Model", description="Empty: the server's first")
    aovs: bpy.props.EnumProperty(
        name="AOVs",
        options={"ENUM_FLAG"},
        default={"mask"},
        items=[
            ("mask", "Mask", "The damage RRTN saw"),
            ("repair", "Repair", "How much it changed"),
            ("motion", "Motion", "Optical flow to both neighbours"),
        ],
    )
    colorspace: bpy.props.StringProperty(
        name="Colour space",
        description="The server's name for the files' colour space; empty: the image's",
    )

    def execute(self, context: bpy.types.Context) -> Outcome:
        try:
            self._source, job, cache = self._prepare(context)
            return self._finish(context, run_job(job, cache))
        except USER_ERRORS as exc:
            return self._fail(exc)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Outcome:
        manager = context.window_manager
        if bpy.app.background or manager is None:
            return self.execute(context)
        try:
            self._source, job, cache = self._prepare(context)
        except USER_ERRORS as exc:
            return self._fail(exc)
        self._thread = JobThread(job, cache).start()
        self._timer = manager.event_timer_add(0.25, window=context.window)
        manager.modal_handler_add(self)
        manager.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Outcome:
        if event.type == "ESC":
            self._thread.cancel()
        manager, workspace = context.window_manager, context.workspace
        if event.type != "TIMER" or manager is None or workspace is None:
            return {"PASS_THROUGH"}
        progress = self._thread.progress
        manager.progress_update(int(100 * progress.fraction))
        workspace.status_text_set(f"RRTN: {progress.text} (Esc cancels)")
        if not self._thread.finished():
            return {"RUNNING_MODAL"}
        manager.event_timer_remove(self._timer)
        manager.progress_end()
        workspace.status_text_set(None)
        try:
            if self._thread.result is None:
                raise self._thread.error or RRTNError("the restore ended without a result")
            return self._finish(context, self._thread.result)
        except USER_ERRORS as exc:
            return self._fail(exc)

    def _prepare(self, context: bpy.types.Context) -> tuple[Source, RestoreJob, Path]:
        source = find_source(_scene(context), self.node_name)
        colorspace = self.colorspace or COLORSPACES.get(source.colorspace, "")
        if not colorspace:
            raise RRTNError(
                f"colour space '{source.colorspace}' has no counterpart on the "
                "server: give the operator's Colour space (e.g. lin_rec709)"
            )
        first, last = (self.first, self.last) if self.last else (source.first, source.last)
        addon = context.preferences.addons.get(__package__) if context.preferences else None
        prefs: Any = addon.preferences if addon else None
        settings = HostSettings(
            model=self.model,
            passes=self.passes,
            aovs=tuple(self.aovs),
            input_colorspace=colorspace,
            **({"server": prefs.server, "token": prefs.token} if prefs else {}),
        )
        pattern = bpy.path.abspath(source.pattern)
        width, height = frame_size(frame_path(pattern, first))
        job = RestoreJob.with_handles(
            first=first,
            last=last,
            handles=self.handles,
            available=(source.first, source.last),
            name=source.name,
            input=pattern,
            width=width,
            height=height,
            settings=settings,
            identity=files_identity(pattern, range(source.first, source.last + 1)),
        )
        cache = Path(prefs.cache) if prefs else default_cache_root() / "blender"
        return source, job, cache

    def _finish(self, context: bpy.types.Context, result: JobResult) -> Outcome:
        image = add_result_node(_scene(context), self._source, result)
        if image.type == "MULTILAYER" and COLORSPACES.get(self._source.colorspace) != (
            "lin_rec709"
        ):
            self.report(
                {"WARNING"},
                "Blender reads multi-layer EXRs as linear Rec.709: restore "
                "without AOVs to keep the plate's colour space",
            )
        self.report(
            {"INFO"},
            f"Restored frames {result.first}-{result.last}"
            + (" (unchanged: reused)" if result.reused else ""),
        )
        return {"FINISHED"}

    def _fail(self, error: Exception) -> Outcome:
        self.report({"ERROR"}, str(error))
        return {"CANCELLED"}


def _scene(context: bpy.types.Context) -> bpy.types.Scene:
    if context.scene is None:
        raise RRTNError("there is no scene")
    return context.scene


def compositor_tree(scene: bpy.types.Scene, *, create: bool = True) -> bpy.types.NodeTree | None:
    """The scene's compositor node tree, made when there is none (4.5 and 5.0 differ)."""
    if not BLENDER_5:  # 4.x: the scene's own tree (gone from 5.0's API, so looked up by name)
        if create and not scene.use_nodes:
            scene.use_nodes = True  # fresh default nodes: Render Layers would render the scene
            nodes = getattr(scene, "node_tree").nodes  # noqa: B009
            for node in [n for n in nodes if n.bl_idname == "CompositorNodeRLayers"]:
                nodes.remove(node)
        return getattr(scene, "node_tree", None)
    if scene.compositing_node_group is None and create:
        tree = _new_tree("Compositing")
        _add_output(tree, "Image", "NodeSocketColor")
        tree.nodes.new("NodeGroupOutput")
        scene.compositing_node_group = tree
    return scene.compositing_node_group


def find_source(scene: bpy.types.Scene, node_name: str) -> Source:
    """The Image node named (or active) in the compositor, else the active image strip."""
    tree = compositor_tree(scene, create=False)
    node = (tree.nodes.get(node_name) if node_name else tree.nodes.active) if tree else None
    if isinstance(node, bpy.types.CompositorNodeImage) and node.image:
        image = node.image
        if image.source != "SEQUENCE":
            raise RRTNError(f"{image.name} is not an image sequence")
        return Source(
            image.name,
            sequence_pattern(image.filepath),
            node.frame_offset + 1,
            node.frame_offset + node.frame_duration,
            node.frame_start,
            _colorspace(image.colorspace_settings),
            node,
        )
    if node_name:
        raise RRTNError(f"the compositor has no Image node '{node_name}' with a sequence")
    strip: Any = scene.sequence_editor.active_strip if scene.sequence_editor else None
    if strip is None or strip.type != "IMAGE":  # ImageStrip, ImageSequence before 4.4
        raise RRTNError("select an Image node with a sequence, or an image strip")
    numbers = [int(re.findall(r"\d+", e.filename)[-1]) for e in strip.elements]
    first_file = str(Path(strip.directory) / strip.elements[0].filename)
    return Source(
        strip.name,
        sequence_pattern(first_file),
        min(numbers),
        max(numbers),
        int(strip.frame_start),
        _colorspace(strip.colorspace_settings),
    )


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


def add_result_node(scene: bpy.types.Scene, source: Source, result: JobResult) -> bpy.types.Image:
    """An RRTN Restore node reading ``result``, in the source Image node's place; returns
    the restored sequence's image."""
    image = bpy.data.images.load(str(result.path(result.first)), check_existing=False)
    image.source = "SEQUENCE"
    settings: Any = image.colorspace_settings  # its names are the OCIO config's, not typed
    settings.name = source.colorspace
    inner = _new_tree(f".RRTN {source.name}")
    read = inner.nodes.new("CompositorNodeImage")
    assert isinstance(read, bpy.types.CompositorNodeImage)
    read.name, read.image = "Restored", image
    read.frame_start = source.scene_start + result.first - source.first
    # One frame longer than the result: Blender holds the last frame of a sequence after its
    # end, and the file after the last is absent, so the node is black outside the range.
    read.frame_duration = result.last - result.first + 2
    read.frame_offset = result.first - 1
    # The picture is "Combined" in a multi-layer EXR, "Image" otherwise; its alpha rides along.
    outputs = {
        ("Image" if s.name in ("Combined", "Image") else s.name): s
        for s in read.outputs or ()
        if s.name != "Alpha"
    }
    for name, socket in outputs.items():
        _add_output(inner, name, SOCKETS[socket.type])
    output = inner.nodes.new("NodeGroupOutput")
    for name, socket in outputs.items():
        inner.links.new(socket, output.inputs[name])
    tree = compositor_tree(scene)
    assert tree is not None
    node = tree.nodes.new(RRTNRestoreNode.bl_idname)
    assert isinstance(node, RRTNRestoreNode)
    node.node_tree = inner
    restored = node.outputs["Image"]
    if source.node is not None and source.node.id_data == tree:
        node.location = (source.node.location.x + 250, source.node.location.y)
        for link in [link for link in tree.links if link.from_node == source.node]:
            if link.from_socket is not None and link.from_socket.type == "RGBA":
                tree.links.new(restored, link.to_socket)  # type: ignore[arg-type]
    else:
        sink = next(
            n for n in tree.nodes if n.bl_idname in ("NodeGroupOutput", "CompositorNodeComposite")
        )
        if not sink.inputs[0].is_linked:
            tree.links.new(restored, sink.inputs[0])
    return image


def _colorspace(settings: Any) -> str:
    return str(settings.name) if settings is not None else ""


def _new_tree(name: str) -> bpy.types.CompositorNodeTree:
    tree = bpy.data.node_groups.new(name, "CompositorNodeTree")
    assert isinstance(tree, bpy.types.CompositorNodeTree)
    return tree


def _add_output(tree: bpy.types.NodeTree, name: str, socket_type: str) -> None:
    assert tree.interface is not None
    # fake-bpy-module lists no socket types for new_socket; Blender takes any socket idname.
    tree.interface.new_socket(name, in_out="OUTPUT", socket_type=socket_type)  # type: ignore[arg-type]


def _menu(self: Any, context: bpy.types.Context) -> None:
    self.layout.operator(RRTN_OT_restore.bl_idname)


CLASSES = (RRTNPreferences, RRTNRestoreNode, RRTN_OT_restore)
MENUS = ("NODE_MT_node", "SEQUENCER_MT_strip")


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    for menu in MENUS:
        getattr(bpy.types, menu).append(_menu)


def unregister() -> None:
    for menu in MENUS:
        getattr(bpy.types, menu).remove(_menu)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

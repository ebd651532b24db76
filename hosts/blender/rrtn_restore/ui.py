"""The add-on in Blender's UI: the "RRTN" tab of the compositor's and the sequencer's sidebar
(the active result's frames, place and state, Restore Again with its settings) and the entries
in the Node and Strip menus."""

from __future__ import annotations

from typing import Any

import bpy

from .farm import RRTN_OT_farm_job, RRTN_OT_farm_load, farm_jobs
from .operators import KNOB_NAMES, RRTN_OT_restore
from .scene import compositor_tree, editor_kind, scene_of
from .sources import Kind
from .staleness import RRTN_OT_check, recipe_of


class RRTN_PT_node(bpy.types.Panel):  # noqa: N801 - Blender's naming
    """The active node's RRTN state, in the compositor's sidebar."""

    bl_label = "RRTN Restore"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "RRTN"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return editor_kind(context) == "node" and context.scene is not None

    def draw(self, context: bpy.types.Context) -> None:
        tree = compositor_tree(scene_of(context), create=False)
        draw_panel(self.layout, context, tree.nodes.active if tree else None, "node")


class RRTN_PT_strip(bpy.types.Panel):  # noqa: N801 - Blender's naming
    """The active strip's RRTN state, in the sequencer's sidebar."""

    bl_label = "RRTN Restore"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "RRTN"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return editor_kind(context) == "strip" and context.scene is not None

    def draw(self, context: bpy.types.Context) -> None:
        editor = scene_of(context).sequence_editor
        draw_panel(self.layout, context, editor.active_strip if editor else None, "strip")


def draw_panel(
    layout: bpy.types.UILayout | None, context: bpy.types.Context, item: Any, kind: Kind
) -> None:
    if layout is None:
        return
    recipe = recipe_of(item)
    if recipe:
        first, last = recipe["frames"]
        layout.label(text=f"Frames {first}-{last} of {recipe['source']}")
        layout.label(text=recipe["result"])
        if recipe.get("stale"):
            column = layout.column()
            column.alert = True
            column.label(text="Out of date:", icon="ERROR")
            for reason in recipe["stale"]:
                column.label(text=reason)
        else:
            layout.label(text="Up to date", icon="CHECKMARK")
        settings = recipe["settings"]
        if "model_file" in settings:
            again: Any = layout.operator(RRTN_OT_farm_job.bl_idname, text="Write Farm Job Again")
            again.model_file = settings["model_file"]
        else:
            again = layout.operator(RRTN_OT_restore.bl_idname, text="Restore Again")
            again.model, again.handles = settings["model"], settings["handles"]
        setattr(again, f"{kind}_name", recipe["source"])
        again.first, again.last = first, last
        again.passes, again.aovs = settings["passes"], set(settings["aovs"])
        again.colorspace = settings["colorspace"]
        for name in KNOB_NAMES:  # a result made before a knob existed: its default
            if name in settings:
                setattr(again, name, settings[name])
        layout.operator(RRTN_OT_check.bl_idname)
    else:
        layout.operator(RRTN_OT_restore.bl_idname)
        layout.operator(RRTN_OT_farm_job.bl_idname)
    if context.scene is not None and farm_jobs(context.scene):
        layout.operator(RRTN_OT_farm_load.bl_idname)


def node_menu(self: Any, context: bpy.types.Context) -> None:
    if editor_kind(context) == "node":  # the Node menu is shared by every node editor
        menu_entries(self.layout)


def strip_menu(self: Any, context: bpy.types.Context) -> None:
    menu_entries(self.layout)


def menu_entries(layout: bpy.types.UILayout) -> None:
    layout.separator()
    layout.operator(RRTN_OT_restore.bl_idname)
    layout.operator(RRTN_OT_farm_job.bl_idname)
    layout.operator(RRTN_OT_farm_load.bl_idname)

"""Results in the scene and whether they are up to date: each result node or strip keeps its
recipe (what it was made from) in an ID property; :func:`check_results` compares it with its
source now (:func:`rrtn_plugin.client.staleness.stale_reasons`) and :func:`mark`s it out of
date (muted, red: the plate shows through) or up to date again. "Check RRTN Results" reads the
source files' dates too."""

from __future__ import annotations

import json
from typing import Any

import bpy

from rrtn_plugin.client.staleness import stale_reasons

from .scene import (
    USER_ERRORS,
    Outcome,
    absolute,
    compositor_tree,
    scene_of,
    set_property,
    strips,
)
from .sources import Source, find_source

RECIPE = "rrtn"
"""The ID property of a result node or strip: its recipe, as JSON text."""
LABEL = "RRTN Restore"
STALE_COLOR = (0.6, 0.15, 0.1)


def recipe_of(item: Any) -> dict[str, Any]:
    """What a result node or strip was made from; empty for anything else."""
    text = item.get(RECIPE) if item is not None else None
    if not isinstance(text, str):
        return {}
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return recipe if isinstance(recipe, dict) else {}


def results(scene: bpy.types.Scene) -> list[Any]:
    """The scene's result nodes and strips."""
    tree = compositor_tree(scene, create=False)
    nodes = list(tree.nodes) if tree else []
    return [item for item in [*nodes, *strips(scene)] if recipe_of(item)]


def check_results(scene: bpy.types.Scene, *, files: bool = False) -> dict[str, list[str]]:
    """Mark each result of ``scene`` out of date, or up to date again, by comparing its recipe
    with its source now (with ``files``, the source files' sizes and dates too; else a
    rewrite found earlier stands); returns the out-of-date results' reasons by name."""
    stale = {}
    for item in results(scene):
        recipe = recipe_of(item)
        try:
            source = source_of(scene, recipe)
        except USER_ERRORS:
            reasons = [f"its source '{recipe.get('source')}' is gone or holds no image sequence"]
        else:
            reasons = stale_reasons(
                recipe, source.inputs(), absolute, files=source.files() if files else None
            )
        mark(item, recipe, reasons)
        if reasons:
            stale[str(item.name)] = reasons
    return stale


def source_of(scene: bpy.types.Scene, recipe: dict[str, Any]) -> Source:
    name = str(recipe.get("source", ""))
    if recipe.get("kind") == "strip":
        return find_source(scene, strip_name=name)
    return find_source(scene, node_name=name)


def mark(item: Any, recipe: dict[str, Any], reasons: list[str]) -> None:
    """Show a result node or strip as out of date (muted: the plate shows through, in red), or
    as up to date; touches Blender's data only when that changes."""
    wanted = {**recipe, "stale": reasons}
    if recipe_of(item) == wanted:
        return
    set_property(item, RECIPE, json.dumps(wanted))
    item.mute = bool(reasons)
    if isinstance(item, bpy.types.Node):
        item.label = f"{LABEL}: out of date" if reasons else LABEL
        item.use_custom_color = bool(reasons)
        item.color = STALE_COLOR
    else:
        item.color_tag = "COLOR_01" if reasons else "NONE"


class RRTN_OT_check(bpy.types.Operator):  # noqa: N801 - Blender's naming
    """Check whether the scene's RRTN results are up to date, their source files included"""

    bl_idname = "rrtn.check"
    bl_label = "Check RRTN Results"
    bl_options = {"REGISTER"}  # noqa: RUF012 - Blender's options

    def execute(self, context: bpy.types.Context) -> Outcome:
        stale = check_results(scene_of(context), files=True)
        for name, reasons in stale.items():
            self.report({"WARNING"}, f"{name} is out of date: {'; '.join(reasons)}")
        if not stale:
            self.report({"INFO"}, "Every RRTN result is up to date")
        return {"FINISHED"}

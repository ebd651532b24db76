"""Blender's data as the add-on reaches it, the same in Blender 4.5 and 5.0: the scene's
compositor tree and strips, new node trees and sockets, the editor an operator runs in, undo
steps, ID properties and ``//`` paths."""

from __future__ import annotations

import os
from typing import Any, Literal

import bpy

from rrtn_plugin.errors import RRTNError

BLENDER_5 = bpy.app.version >= (5, 0, 0)
USER_ERRORS = (RRTNError, ValueError, OSError)
"""What the operators report to the user (ValueError: a path the client library refuses)."""
EditorKind = Literal["node", "strip", ""]
Outcome = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


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
        tree = new_tree("Compositing")
        add_socket(tree, "Image", "OUTPUT", "NodeSocketColor")
        tree.nodes.new("NodeGroupOutput")
        scene.compositing_node_group = tree
    return scene.compositing_node_group


def strips(scene: bpy.types.Scene) -> list[Any]:
    """Every strip of the scene's sequencer (metastrips' too)."""
    editor = scene.sequence_editor
    if editor is None:
        return []
    every: Any = getattr(editor, "strips_all", None) or getattr(editor, "sequences_all", ())
    return list(every)


def new_tree(name: str) -> bpy.types.CompositorNodeTree:
    tree = bpy.data.node_groups.new(name, "CompositorNodeTree")
    assert isinstance(tree, bpy.types.CompositorNodeTree)
    return tree


def add_socket(
    tree: bpy.types.NodeTree, name: str, in_out: Literal["INPUT", "OUTPUT"], socket_type: str
) -> None:
    assert tree.interface is not None
    # fake-bpy-module lists no socket types for new_socket; Blender takes any socket idname.
    tree.interface.new_socket(name, in_out=in_out, socket_type=socket_type)  # type: ignore[arg-type]


def scene_of(context: bpy.types.Context) -> bpy.types.Scene:
    if context.scene is None:
        raise RRTNError("there is no scene")
    return context.scene


def editor_kind(context: bpy.types.Context) -> EditorKind:
    """The kind of source the editor the operator runs in holds: the compositor's nodes, the
    sequencer's strips, or neither (a shader or geometry node editor is neither)."""
    space = context.space_data
    if space is None:
        return ""
    if space.type == "SEQUENCE_EDITOR":
        return "strip"
    if space.type == "NODE_EDITOR" and getattr(space, "tree_type", "") == "CompositorNodeTree":
        return "node"
    return ""


def push_undo(message: str) -> None:
    if not bpy.app.background:
        bpy.ops.ed.undo_push(message=message)


def set_property(item: Any, name: str, value: str) -> None:
    item[name] = value


def absolute(path: str) -> str:
    """A path as the .blend keeps it (maybe ``//``-relative), absolute and normalised."""
    return os.path.normpath(bpy.path.abspath(path))

"""The add-on's preferences (server, token, shared cache folder), and where they put a
project's results: the rule every host follows
(:func:`rrtn_plugin.client.results.result_root`), with the .blend as the document and its
``//`` paths (:func:`blender_path`)."""

# mypy: disable-error-code="valid-type"
# (Blender declares properties as class annotations holding bpy.props calls.)

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bpy

from rrtn_plugin.client import results
from rrtn_plugin.client.settings import HostSettings

RESULTS = results.ResultRule(".blend", "the add-on's preferences")


class RRTNPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__
    server: bpy.props.StringProperty(name="Server", default=HostSettings().server)
    token: bpy.props.StringProperty(name="Token", subtype="PASSWORD")
    cache: bpy.props.StringProperty(
        name="Shared cache folder",
        subtype="DIR_PATH",
        description="Where restored frames go: a folder every machine that renders the .blend "
        "reads (// is relative to the .blend). Empty: $RRTN_CACHE, else rrtn_cache/ beside "
        "the .blend",
    )

    def draw(self, context: bpy.types.Context) -> None:
        for name in ("server", "token", "cache"):
            self.layout.prop(self, name)


def addon_preferences(context: bpy.types.Context) -> Any:
    addon = context.preferences.addons.get(__package__) if context.preferences else None
    return addon.preferences if addon else None


def settings_from(context: bpy.types.Context, **choices: Any) -> HostSettings:
    """The operator's ``choices`` with the preferences' server and token."""
    prefs = addon_preferences(context)
    return HostSettings(
        **choices, **({"server": prefs.server, "token": prefs.token} if prefs else {})
    )


def result_root(configured: str, environment: str, blend_file: str) -> Path:
    """The folder that holds a project's results: ``configured`` (the preferences), else
    ``environment`` (``$RRTN_CACHE``), either maybe ``//``-relative, else ``rrtn_cache``
    beside the saved ``blend_file``."""
    return results.result_root(configured, environment, blend_file, RESULTS)


def results_folder(context: bpy.types.Context) -> Path:
    """The open project's result root."""
    prefs = addon_preferences(context)
    configured = str(prefs.cache) if prefs else ""
    return result_root(configured, os.environ.get("RRTN_CACHE", ""), bpy.data.filepath)


def blender_path(path: str | Path, blend_file: str) -> str:
    """``path`` as the .blend should keep it: relative (``//``) when it lies in the .blend's
    folder, so it moves with the project; else absolute (a shared folder)."""
    return results.document_path(path, blend_file, prefix="//")

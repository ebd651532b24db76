"""RRTN Restore for Blender 4.2+ (tested on 4.5 LTS and 5.0): old-film restoration of an image
sequence through an rrtn-plugin server, back in the scene as built-in Blender data.

"Restore with RRTN" (compositor: Node menu, on the active Image node; sequencer: Strip menu, on
the active image strip) sends the sequence's files for the chosen frames plus handles to the
server from a worker thread (modal: progress in the status bar, Esc cancels, undo waits until
it ends; blocking when run from a script or in the background). The restored frames are
written where every machine that renders the .blend reads them (beside the saved .blend, or a
shared folder), and come back as data any Blender reads without this add-on (a render farm,
``--factory-startup``, another artist): from the compositor a built-in node group
"RRTN Restore" in the source's place, from the sequencer an image strip above the source.
Each result keeps its recipe; when its source changes, it is marked out of date and muted, so
the plate shows through, until it is restored again. "Write RRTN Farm Job" writes an Open Job
Description bundle instead; "Load RRTN Farm Results" puts its frames in the scene.

The modules, one job each: :mod:`.operators` (the settings, Restore with RRTN),
:mod:`.farm` (the farm operators), :mod:`.sources` (the sequences restored),
:mod:`.placing` (the result nodes and strips), :mod:`.staleness` (recipes, out-of-date
marks, Check RRTN Results), :mod:`.ui` (sidebar and menus), :mod:`.preferences` (server,
token, where results live), :mod:`.scene` (Blender's data, 4.5 and 5.0 alike). This module
registers them, and checks results when a .blend is opened or the scene changes. Everything
that is not Blender's API is in :mod:`rrtn_plugin.client`.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import bpy

from .farm import RRTN_OT_farm_job, RRTN_OT_farm_load
from .operators import RRTN_OT_restore
from .preferences import RRTNPreferences
from .staleness import RRTN_OT_check, check_results
from .ui import RRTN_PT_node, RRTN_PT_strip, node_menu, strip_menu

Handler = TypeVar("Handler", bound=Any)
CHECK_IN_BACKGROUND = False
"""Whether results are checked when Blender runs without a UI (a farm renders what was saved;
tests turn this on)."""
_CHECKING: list[bool] = []
"""Not empty while the results are being checked (marking a result is itself a change)."""


def _persistent(handler: Handler) -> Handler:
    """Blender's ``persistent`` (the handler stays when another .blend is opened), typed."""
    return cast(Handler, bpy.app.handlers.persistent(handler))


@_persistent
def _check_on_load(_path: str) -> None:
    """A .blend was opened: check its results, their source files included."""
    if bpy.app.background and not CHECK_IN_BACKGROUND:
        return
    for scene in bpy.data.scenes:
        check_results(scene, files=True)


@_persistent
def _check_on_update(scene: bpy.types.Scene, _depsgraph: Any = None) -> None:
    """Something changed: check the scene's results (not their files: that would read every
    file's date on each change)."""
    if _CHECKING or (bpy.app.background and not CHECK_IN_BACKGROUND):
        return
    _CHECKING.append(True)
    try:
        check_results(scene)
    finally:
        _CHECKING.clear()


CLASSES = (
    RRTNPreferences,
    RRTN_OT_restore,
    RRTN_OT_farm_job,
    RRTN_OT_farm_load,
    RRTN_OT_check,
    RRTN_PT_node,
    RRTN_PT_strip,
)
MENUS = {"NODE_MT_node": node_menu, "SEQUENCER_MT_strip": strip_menu}
HANDLERS = {"load_post": _check_on_load, "depsgraph_update_post": _check_on_update}


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    for menu, draw in MENUS.items():
        getattr(bpy.types, menu).append(draw)
    for name, handler in HANDLERS.items():
        getattr(bpy.app.handlers, name).append(handler)


def unregister() -> None:
    for name, handler in HANDLERS.items():
        handlers = getattr(bpy.app.handlers, name)
        if handler in handlers:
            handlers.remove(handler)
    for menu, draw in MENUS.items():
        getattr(bpy.types, menu).remove(draw)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

"""The operators' shared settings (:class:`RestoreSettings`: which sequence, which frames,
which restore) and "Restore with RRTN" (:class:`RRTN_OT_restore`): the sequence's files sent
to the server from a worker thread while the UI stays live (progress in the status bar, Esc
cancels, undo waits), or at once from a script; the result put in the scene."""

# mypy: disable-error-code="valid-type"
# (Blender declares properties as class annotations holding bpy.props calls.)

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

from rrtn_plugin.client.jobs import JobResult, RestoreJob
from rrtn_plugin.client.library import frame_path
from rrtn_plugin.client.running import JobThread, run_job
from rrtn_plugin.client.sequences import files_identity
from rrtn_plugin.client.settings import CHOICE_HELP, KNOBS
from rrtn_plugin.client.staleness import new_recipe

from .placing import place_result
from .preferences import blender_path, results_folder, settings_from
from .scene import USER_ERRORS, Outcome, editor_kind, push_undo, scene_of
from .sources import Source, find_source, frame_size, server_colorspace

UNDO_KEYS = {"Z", "Y"}
KNOB = {knob.name: knob for knob in KNOBS}
KNOB_NAMES = tuple(KNOB)
"""The restore knobs, properties of both operators under the client's names."""


def described(name: str) -> dict[str, Any]:
    """A restore knob's property arguments: its label, tooltip and default, and its choices
    (each with what it does) or range."""
    knob = KNOB[name]
    arguments: dict[str, Any] = {"name": knob.label.capitalize(), "description": knob.summary}
    if knob.choices:
        texts = {c: CHOICE_HELP[c][0].upper() + CHOICE_HELP[c][1:] for c in knob.choices}
        items = [(c, c.capitalize(), texts[c]) for c in knob.choices]
        return {**arguments, "items": items, "default": knob.default}
    if knob.type is float:
        arguments |= {"min": knob.minimum, "max": knob.maximum, "subtype": "FACTOR"}
    return {**arguments, "default": knob.default}


class RestoreSettings:
    """The operators' shared properties: which sequence, which frames, which restore."""

    node_name: bpy.props.StringProperty(
        name="Image node", description="In the scene's compositor; empty: the active node"
    )
    strip_name: bpy.props.StringProperty(
        name="Image strip", description="In the scene's sequencer; empty: the active strip"
    )
    first: bpy.props.IntProperty(
        name="First", description="First file number (with Last 0: the whole sequence)"
    )
    last: bpy.props.IntProperty(name="Last")
    handles: bpy.props.IntProperty(name="Handles", default=8, min=0)
    passes: bpy.props.IntProperty(name="Passes", description="0: the model's default", min=0)
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
    repair_mode: bpy.props.EnumProperty(**described("repair_mode"))
    repair_strength: bpy.props.FloatProperty(**described("repair_strength"))
    tone_guard: bpy.props.EnumProperty(**described("tone_guard"))
    cuts: bpy.props.BoolProperty(**described("cuts"))

    def source(self, context: bpy.types.Context) -> Source:
        """The sequence named, else the active one of the editor the operator runs in."""
        return find_source(
            scene_of(context),
            node_name=str(self.node_name),
            strip_name=str(self.strip_name),
            prefer=editor_kind(context),
        )

    def draw_settings(self, names: tuple[str, ...]) -> None:
        """The dialog: the properties ``names``."""
        layout: Any = getattr(self, "layout", None)
        if layout is not None:
            for name in names:
                layout.prop(self, name)

    def range_of(self, source: Source) -> tuple[int, int]:
        """The file numbers to restore."""
        return (int(self.first), int(self.last)) if self.last else (source.first, source.last)

    def server_colorspace(self, source: Source) -> str:
        """The server's name for the source's colour space."""
        return server_colorspace(source, str(self.colorspace))

    def knobs(self) -> dict[str, Any]:
        """The restore knobs' values, by the client's names (Blender keeps floats in single
        precision, where 0.3 reads 0.30000001: rounded back)."""
        values = {name: getattr(self, name) for name in KNOB_NAMES}
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}

    def recipe(
        self, source: Source, frames: tuple[int, int], context: tuple[int, int], **settings: object
    ) -> dict[str, Any]:
        """What a result of ``source`` made with these settings is made from."""
        return new_recipe(
            kind=source.kind,
            source=source.name,
            inputs=source.inputs(),
            frames=frames,
            context=context,
            files=source.files(),
            settings={
                "passes": int(self.passes),
                "aovs": sorted(self.aovs),
                "colorspace": str(self.colorspace),
                "input_colorspace": self.server_colorspace(source),
                **self.knobs(),
                **settings,
            },
        )


class RRTN_OT_restore(RestoreSettings, bpy.types.Operator):  # noqa: N801 - Blender's naming
    """Restore an image sequence with RRTN on an rrtn-plugin server"""

    bl_idname = "rrtn.restore"
    bl_label = "Restore with RRTN"
    # Not UNDO: "Adjust Last Operation" (F9) would run the whole restore again, blocking the
    # UI. The result is one undo step, pushed once it is in the scene.
    bl_options = {"REGISTER"}  # noqa: RUF012 - annotations are Blender's properties

    model: bpy.props.StringProperty(name="Model", description="Empty: the server's first")
    in_thread: bpy.props.BoolProperty(
        name="In a thread",
        description="Restore in a worker thread while the UI stays live (set by the dialog)",
        options={"HIDDEN", "SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return poll_editors(cls, context)

    def draw(self, context: bpy.types.Context) -> None:
        names = ("first", "last", "handles", "passes", "model", "aovs", "colorspace")
        self.draw_settings((*names, *KNOB_NAMES))

    def execute(self, context: bpy.types.Context) -> Outcome:
        try:
            job, cache = self._prepare(context)
        except USER_ERRORS as exc:
            return self._fail(exc)
        manager = context.window_manager
        if self.in_thread and manager is not None and context.window is not None:
            self._thread = JobThread(job, cache).start()
            self._timer = manager.event_timer_add(0.25, window=context.window)
            manager.modal_handler_add(self)
            manager.progress_begin(0, 100)
            return {"RUNNING_MODAL"}
        try:
            return self._finish(run_job(job, cache))
        except USER_ERRORS as exc:
            return self._fail(exc)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Outcome:
        """From a menu or button: the settings in a dialog, then the restore in the background
        of the UI (without a UI, as from a script: at once, to completion)."""
        manager = context.window_manager
        if bpy.app.background or manager is None or context.window is None:
            return self.execute(context)
        self.in_thread = True
        return manager.invoke_props_dialog(self, confirm_text="Restore")

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Outcome:
        workspace = context.workspace
        if event.type == "ESC":
            self._thread.cancel()
        elif event.type in UNDO_KEYS and event.value == "PRESS" and (event.ctrl or event.oskey):
            if workspace is not None:
                workspace.status_text_set("RRTN: undo waits until the restore ends (Esc cancels)")
            return {"RUNNING_MODAL"}  # undo now would free what the result is put beside
        manager = context.window_manager
        if event.type != "TIMER" or manager is None:
            return {"PASS_THROUGH"}
        progress = self._thread.progress
        manager.progress_update(int(100 * progress.fraction))
        if workspace is not None:
            workspace.status_text_set(f"RRTN: {progress.text} (Esc cancels)")
        if not self._thread.finished():
            return {"RUNNING_MODAL"}
        self._stop(context)
        try:
            return self._finish(self._thread.outcome())
        except USER_ERRORS as exc:
            return self._fail(exc)

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the operator (a file is opened, the window closes): stop the job."""
        self._thread.cancel()
        self._stop(context)

    def _stop(self, context: bpy.types.Context) -> None:
        manager, workspace = context.window_manager, context.workspace
        if manager is not None:
            manager.event_timer_remove(self._timer)
            manager.progress_end()
        if workspace is not None:
            workspace.status_text_set(None)

    def _prepare(self, context: bpy.types.Context) -> tuple[RestoreJob, Path]:
        source = self.source(context)
        first, last = self.range_of(source)
        settings = settings_from(
            context,
            model=str(self.model),
            passes=int(self.passes),
            aovs=tuple(sorted(self.aovs)),
            input_colorspace=self.server_colorspace(source),
            **self.knobs(),
        )
        files = source.files()
        width, height = frame_size(frame_path(files, first))
        job = RestoreJob.with_handles(
            first=first,
            last=last,
            handles=int(self.handles),
            available=(source.first, source.last),
            name=source.title,
            input=files,
            width=width,
            height=height,
            settings=settings,
            identity=files_identity(files, range(source.first, source.last + 1)),
        )
        self._source = source
        self._recipe = self.recipe(
            source,
            (first, last),
            (job.context_first, job.context_last),
            model=str(self.model),
            handles=int(self.handles),
        )
        return job, results_folder(context)

    def _finish(self, result: JobResult) -> Outcome:
        recipe = {**self._recipe, "result": blender_path(result.pattern, bpy.data.filepath)}
        scene, placed = place_result(self._source, recipe)
        for warning in placed:
            self.report({"WARNING"}, warning)
        push_undo("Restore with RRTN")
        self.report(
            {"INFO"},
            f"Restored frames {result.first}-{result.last} into {scene.name}"
            + (" (unchanged: reused)" if result.reused else ""),
        )
        return {"FINISHED"}

    def _fail(self, error: Exception) -> Outcome:
        self.report({"ERROR"}, str(error))
        return {"CANCELLED"}


def poll_editors(cls: Any, context: bpy.types.Context) -> bool:
    """The restore operators work on a scene's compositor or sequencer: from those editors,
    and from scripts (the text editor, the console, no editor at all)."""
    space = context.space_data
    if context.scene is None:
        cls.poll_message_set("There is no scene")
        return False
    if space is None or editor_kind(context) or space.type in ("TEXT_EDITOR", "CONSOLE"):
        return True
    cls.poll_message_set("Works in the compositor and the sequencer")
    return False

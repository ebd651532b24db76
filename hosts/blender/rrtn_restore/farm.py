"""Farm jobs from Blender: "Write RRTN Farm Job" writes an Open Job Description bundle through
``rrtn-plugin farm openjd`` (:mod:`rrtn_plugin.client.farm`) into the project's result root
and lists it in the scene (:data:`FARM`); "Load RRTN Farm Results" puts each listed job's
frames in the scene as a restore does, once the farm has written them all."""

# mypy: disable-error-code="valid-type"
# (Blender declares properties as class annotations holding bpy.props calls.)

from __future__ import annotations

import contextlib
import json
from typing import Any

import bpy

from rrtn_plugin.client.farm import farm_command, farm_model, find_program, run_farm_command
from rrtn_plugin.client.library import frame_path
from rrtn_plugin.client.results import digest, sequence_in, slug
from rrtn_plugin.client.sequences import files_identity

from .operators import KNOB_NAMES, RestoreSettings, poll_editors
from .placing import place_result
from .preferences import blender_path, results_folder
from .scene import USER_ERRORS, Outcome, push_undo, scene_of, set_property
from .staleness import source_of

FARM = "rrtn_farm"
"""The scene's ID property listing farm jobs written and not loaded yet (JSON text)."""


def farm_jobs(scene: bpy.types.Scene) -> list[dict[str, Any]]:
    """The farm jobs written for ``scene`` and not loaded yet: their recipes."""
    text = scene.get(FARM)
    with contextlib.suppress(json.JSONDecodeError, TypeError):
        jobs = json.loads(text) if isinstance(text, str) else []
        return [j for j in jobs if isinstance(j, dict)]
    return []


class RRTN_OT_farm_job(RestoreSettings, bpy.types.Operator):  # noqa: N801 - Blender's naming
    """Write an Open Job Description bundle restoring the sequence on a render farm
    (through rrtn-plugin farm openjd)"""

    bl_idname = "rrtn.farm_job"
    bl_label = "Write RRTN Farm Job"
    bl_options = {"REGISTER"}  # noqa: RUF012 - annotations are Blender's properties

    model_file: bpy.props.StringProperty(
        name="Model file",
        subtype="FILE_PATH",
        description="Checkpoint the farm's tasks load; empty: $RRTN_FARM_MODEL, else the "
        "bundled model",
    )
    chunk: bpy.props.IntProperty(name="Chunk", description="Frames per task", default=100, min=1)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return poll_editors(cls, context)

    def draw(self, context: bpy.types.Context) -> None:
        names = ("first", "last", "passes", "aovs", "colorspace", *KNOB_NAMES)
        self.draw_settings((*names, "model_file", "chunk"))

    def execute(self, context: bpy.types.Context) -> Outcome:
        try:
            program = find_program(host="Blender")
            source = self.source(context)
            first, last = self.range_of(source)
            files = source.files()
            model_file = farm_model(str(self.model_file))
            recipe = self.recipe(
                source, (first, last), (source.first, source.last), model_file=model_file
            )
            settings = recipe["settings"]
            identity = files_identity(files, range(source.first, source.last + 1))
            key = digest([identity, first, last, *sorted(settings.items())])
            folder = results_folder(context) / f"{slug(source.title)}-farm-{key}"
            output, bundle = sequence_in(folder, source.title, last), folder / "job"
            command = farm_command(
                program,
                bundle,
                files,
                output,
                first=first,
                last=last,
                chunk=int(self.chunk),
                name=f"RRTN restore {source.title}",
                aovs=settings["aovs"],
                colorspace=settings["input_colorspace"],
                passes=int(self.passes),
                model_file=bpy.path.abspath(model_file) if model_file else "",
                **self.knobs(),
            )
            run_farm_command(command)
        except USER_ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        scene = scene_of(context)
        pending = [j for j in farm_jobs(scene) if j["source"] != source.name]
        recipe["result"] = blender_path(output, bpy.data.filepath)
        recipe["farm"] = blender_path(bundle, bpy.data.filepath)
        set_property(scene, FARM, json.dumps([*pending, recipe]))
        self.report(
            {"INFO"},
            f"Wrote the farm job {bundle} (submit: deadline bundle submit {bundle}); once the "
            "farm has written its frames, Load RRTN Farm Results",
        )
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Outcome:
        manager = context.window_manager
        if bpy.app.background or manager is None:
            return self.execute(context)
        return manager.invoke_props_dialog(self)


class RRTN_OT_farm_load(bpy.types.Operator):  # noqa: N801 - Blender's naming
    """Put the frames of the scene's farm jobs in the scene, once the farm has written them"""

    bl_idname = "rrtn.farm_load"
    bl_label = "Load RRTN Farm Results"
    bl_options = {"REGISTER"}  # noqa: RUF012 - Blender's options

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and bool(farm_jobs(context.scene))

    def execute(self, context: bpy.types.Context) -> Outcome:
        scene = scene_of(context)
        waiting, loaded = [], []
        for recipe in farm_jobs(scene):
            first, last = recipe["frames"]
            files = bpy.path.abspath(recipe["result"])
            missing = [f for f in range(first, last + 1) if not frame_path(files, f).is_file()]
            if missing:
                waiting.append(recipe)
                self.report(
                    {"WARNING"},
                    f"{recipe['source']}: the farm has not written {len(missing)} of "
                    f"{last - first + 1} frames yet (first missing: {missing[0]})",
                )
                continue
            try:
                source = source_of(scene, recipe)
                _, warnings = place_result(source, recipe, scene=scene)
            except USER_ERRORS as exc:
                waiting.append(recipe)
                self.report({"ERROR"}, f"{recipe['source']}: {exc}")
                continue
            for warning in warnings:
                self.report({"WARNING"}, warning)
            loaded.append(recipe["source"])
        set_property(scene, FARM, json.dumps(waiting))
        if not loaded:
            return {"CANCELLED"}
        push_undo("Load RRTN Farm Results")
        self.report({"INFO"}, f"Loaded the farm's frames of {', '.join(loaded)}")
        return {"FINISHED"}

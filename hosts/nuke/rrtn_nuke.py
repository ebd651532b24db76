"""RRTN Restore for Nuke: a Group node that restores its input through an rrtn-plugin server.

Nuke cannot run Python per pixel, so the node's Restore button renders the input range with its
handles to EXR through a Write inside the Group (raw: the working space's values as they are;
cropped to the input's format first, so overscan or a moved bbox never changes the frame size),
restores it on the server from a worker thread (``nuke.ProgressTask`` shows progress and
cancels), and points the Group's Read at the restored frames: exactly the requested range, with
the AOVs as layers (``rrtn_mask.Y``). Results live beside the saved script (``rrtn_cache/``, the
Read's path is relative to the script, so another artist or a farm opens it as it is and the
Read needs no plugin), in the node's cache folder or under ``$RRTN_CACHE``
(:func:`rrtn_plugin.client.results.result_root`), in a folder keyed by the input (upstream
knob values, expressions evaluated, nested groups, files; not node positions:
:mod:`rrtn_nuke_input`) and the settings: pressing Restore with nothing changed does no work,
and the node says "Out of date" when the input changed. **Farm job** writes an Open Job
Description bundle instead. Everything that is not Nuke's API is in :mod:`rrtn_plugin.client`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import nuke
from rrtn_nuke_input import script_colorspace, upstream_identity, working_space

from rrtn_plugin.client.farm import farm_model, find_program, write_farm_bundle
from rrtn_plugin.client.jobs import JobResult, RestoreJob, finished_result
from rrtn_plugin.client.results import ResultRule, document_path, result_root
from rrtn_plugin.client.running import JobThread
from rrtn_plugin.client.settings import AOVS, KNOBS, HostSettings, Knob, server_choices
from rrtn_plugin.errors import RRTNError

SERVER_DEFAULT_MODEL = "(server default)"
CALL = "import rrtn_nuke; rrtn_nuke."
"""Button commands run in Nuke's script namespace: they import this module themselves."""
SCRIPT_FOLDER = "[file dirname [value root.name]]/"
"""TCL for the saved script's folder: Nuke evaluates it in file knobs, no plugin needed."""
RESULTS = ResultRule("nuke document", "the node's cache folder", subfolder="nuke")
_running: dict[str, JobThread] = {}


def create_node() -> nuke.Node:
    """Nodes > RRTN > RRTN Restore: the Group, connected to the selected node and placed below
    it, its panel open; one undo step."""
    source = nuke.selectedNode() if nuke.selectedNodes() else None
    undo = nuke.Undo()
    undo.begin("RRTN Restore")
    try:
        group = _build_group()
        if source is not None:  # the Group has its Input now, so the pipe exists
            group.setInput(0, source)
            group.setXYpos(source.xpos(), source.ypos() + 80)
        first, last = _input_range(group)
        group["first"].setValue(first)
        group["last"].setValue(last)
        for node in nuke.selectedNodes():
            node.setSelected(False)
        group.setSelected(True)
    finally:
        undo.end()
    refresh_choices(group)
    group.showControlPanel()
    return group


def _build_group() -> nuke.Node:
    settings = HostSettings()
    group = nuke.nodes.Group(name="RRTNRestore")
    key = nuke.String_Knob("rrtn_key", "")
    key.setVisible(False)
    knobs = [
        nuke.Tab_Knob("rrtn", "RRTN"),
        nuke.String_Knob("server", "server", settings.server),
        nuke.PyScript_Knob("refresh", "Refresh", f"{CALL}refresh_choices(nuke.thisNode())"),
        nuke.Enumeration_Knob("model", "model", [SERVER_DEFAULT_MODEL]),
        nuke.Int_Knob("first", "frame range"),
        nuke.Int_Knob("last", ""),
        nuke.Int_Knob("handles", "handles"),
        nuke.Int_Knob("passes", "passes (0: model default)"),
        *[nuke.Boolean_Knob(f"aov_{aov}", aov) for aov in AOVS],
        *[_restore_knob(knob) for knob in KNOBS],
        nuke.String_Knob("colorspace", "input colour space", working_space()),
        nuke.File_Knob("cache", "cache folder"),
        nuke.PyScript_Knob("restore", "Restore", f"{CALL}restore(nuke.thisNode())"),
        nuke.PyScript_Knob("farm", "Farm job", f"{CALL}farm(nuke.thisNode())"),
        nuke.Text_Knob("status", "", "Not restored yet: the input passes through."),
        key,
    ]
    for knob in knobs:
        group.addKnob(knob)
    group["last"].clearFlag(nuke.STARTLINE)
    group["restore"].setFlag(nuke.STARTLINE)
    group["handles"].setValue(8)
    group["aov_mask"].setValue(True)
    with group:
        plate = nuke.nodes.Input(name="Input1")
        to_format = nuke.nodes.Crop(name="ToFormat", reformat=False, intersect=False, crop=True)
        to_format.setInput(0, plate)
        write = nuke.nodes.Write(
            name="RenderInput", file_type="exr", raw=True, disable=True, create_directories=True
        )
        write["datatype"].setValue("32 bit float")
        write["compression"].setValue("Zip (1 scanline)")
        write["channels"].setValue("rgba")
        write.setInput(0, to_format)
        nuke.nodes.Read(name="Restored", raw=True, before="black", after="black")
        nuke.nodes.Output(name="Output1").setInput(0, plate)
    return group


def _restore_knob(knob: Knob) -> nuke.Knob:
    """A restore knob: a menu of its choices, a slider over its range or a checkbox, set to
    the engine's default, its tooltip saying when to use which."""
    made: nuke.Knob
    if knob.choices:
        made = nuke.Enumeration_Knob(knob.name, knob.label, list(knob.choices))
    elif knob.type is bool:
        made = nuke.Boolean_Knob(knob.name, knob.label)
    else:
        slider = nuke.Double_Knob(knob.name, knob.label)
        slider.setRange(knob.minimum, knob.maximum)
        made = slider
    made.setValue(knob.default)
    made.setTooltip(knob.tooltip)
    return made


def refresh_choices(group: nuke.Node) -> None:
    """Fill the model menu from the server, or say in the status why it could not."""
    try:
        choices = server_choices(_settings(group))
    except RRTNError as exc:
        _status(group, f"Server: {exc}")
        return
    model = group["model"]
    assert isinstance(model, nuke.Enumeration_Knob)
    current = model.value()
    model.setValues([SERVER_DEFAULT_MODEL, *choices.models])
    if current in choices.models:
        model.setValue(current)
    _status(group, f"Server {choices.version} on {choices.device}: {', '.join(choices.models)}")


def restore(group: nuke.Node) -> None:
    """The Restore button: reuse a finished identical result, or render, send and read back."""
    name = group.fullName()
    if name in _running and not _running[name].finished():
        nuke.message(f"{name} is already restoring; cancel it in the progress bar first.")
        return
    try:
        job, cache, cache_text = _job(group)
        done = finished_result(job, cache)
        if done is None:
            _render_input(group, job, cache)
    except RRTNError as exc:
        _status(group, f"Error: {exc}")
        nuke.message(f"RRTN Restore: {exc}")
        return
    if done is not None:
        _show(group, job, done.pattern, cache, cache_text)
        _status(group, f"Up to date: frames {job.first}-{job.last} (nothing changed)")
        return
    thread = JobThread(job, cache).start()
    _running[name] = thread
    _status(group, f"Restoring frames {job.first}-{job.last} on {job.settings.server}")
    threading.Thread(
        target=_watch, args=(group, job, thread, cache, cache_text), daemon=True
    ).start()


def farm(group: nuke.Node) -> None:
    """The Farm job button: render the input beside the script and write an Open Job
    Description bundle (``rrtn-plugin farm openjd``) restoring it; the Read shows the frames
    as the farm writes them."""
    try:
        job, cache, cache_text = _job(group)
        program = find_program(host="Nuke")
        _render_input(group, job, cache)
        bundle = write_farm_bundle(job, cache, program=program, model=farm_model())
    except RRTNError as exc:
        _status(group, f"Error: {exc}")
        nuke.message(f"RRTN Restore: {exc}")
        return
    _show(group, job, job.output_pattern(cache), cache, cache_text)
    _status(group, f"Farm job written: submit it with 'deadline bundle submit {bundle}'")


def update_status(group: nuke.Node | None = None) -> None:
    """updateUI callback: say "Out of date" when the input or settings no longer match the
    frames the Read shows (a moved node does not count; an edited expression or group does)."""
    group = group or nuke.thisNode()
    knob = group.knob("rrtn_key")
    if knob is None or not knob.value() or group.fullName() in _running:
        return
    try:
        current = _job(group)[0].key()
    except Exception:  # a broken input is a changed input; never an error on every redraw
        current = ""
    status = str(group["status"].value())
    if current != knob.value() and not status.startswith("Out of date"):
        _status(group, "Out of date: the input or settings changed; press Restore")
        group["label"].setValue("out of date")
    elif current == knob.value() and status.startswith("Out of date"):
        _status(group, "Up to date")
        group["label"].setValue("")


def _render_input(group: nuke.Node, job: RestoreJob, cache: Path) -> None:
    """Write the input's context frames, cropped to its format, where the job reads them."""
    crop, write = _inner(group, "ToFormat"), _inner(group, "RenderInput")
    crop["box"].setValue((0, 0, job.width, job.height))  # the format: bbox = frame
    write["file"].setValue(job.rendered_input(cache).replace("\\", "/"))
    write["disable"].setValue(False)
    try:
        nuke.execute(write, job.context_first, job.context_last)
    except RuntimeError as exc:
        raise RRTNError(f"rendering the input failed: {exc}") from None
    finally:
        write["disable"].setValue(True)


def _watch(group: nuke.Node, job: RestoreJob, thread: JobThread, *where: Any) -> None:
    """Worker: mirror the job's progress in a ProgressTask; hand the end to the main thread."""
    task = nuke.ProgressTask(f"RRTN Restore {group.name()}")
    while not thread.finished(0.2):
        task.setProgress(int(100 * thread.progress.fraction))
        task.setMessage(thread.progress.text)
        if task.isCancelled():
            thread.cancel()
    del task
    nuke.executeInMainThread(_finish, args=(group, job, thread, *where))


def _finish(group: nuke.Node, job: RestoreJob, thread: JobThread, *where: Any) -> None:
    _running.pop(group.fullName(), None)
    if thread.error is not None or thread.result is None:
        _status(group, f"Error: {thread.error}")
        return
    result: JobResult = thread.result
    _show(group, job, result.pattern, *where)
    warning = (
        f"; NaN/Inf in frames {list(result.nonfinite_frames)}" if result.nonfinite_frames else ""
    )
    _status(group, f"Restored frames {job.first}-{job.last} in {result.seconds:.1f} s{warning}")


def _show(group: nuke.Node, job: RestoreJob, pattern: str, cache: Path, cache_text: str) -> None:
    """Point the inner Read at the restored frames (through the cache folder as the user sees
    it: relative to the script when beside it) and the Output at the Read."""
    read = _inner(group, "Restored")
    relative = Path(pattern).relative_to(cache).as_posix()
    read["file"].setValue(f"{cache_text.rstrip('/')}/{relative}")
    for knob in ("first", "origfirst"):
        read[knob].setValue(job.first)
    for knob in ("last", "origlast"):
        read[knob].setValue(job.last)
    # No reload needed: a result's folder is named by its key, so new content has a new path.
    _inner(group, "Output1").setInput(0, read)
    group["rrtn_key"].setValue(job.key())
    group["label"].setValue("")


def _inner(group: nuke.Node, name: str) -> nuke.Node:
    node = group.node(name) if isinstance(group, nuke.Group) else None
    if node is None:
        raise RRTNError(
            f"{group.name()} has lost its inner node {name}: create a new RRTN Restore node"
        )
    return node


def _job(group: nuke.Node) -> tuple[RestoreJob, Path, str]:
    """The restore the knobs describe, its cache folder and that folder as the Read's path
    should name it; raises RRTNError for what the user must change."""
    source = group.input(0)
    if source is None:
        raise RRTNError("connect the node's input to the plate to restore")
    if nuke.root()["proxy"].value():
        raise RRTNError(
            "proxy mode is on: RRTN restores full-resolution frames only; "
            "switch proxy off and press Restore again"
        )
    available = (source.firstFrame(), source.lastFrame())
    first, last = int(group["first"].value()), int(group["last"].value())
    job = RestoreJob.with_handles(
        first=first,
        last=last,
        handles=int(group["handles"].value()),
        available=available,
        name=group.name(),
        input="",
        width=source.format().width(),  # the frame, not the bbox: the Write crops to it
        height=source.format().height(),
        identity=upstream_identity(source, (first, last)),
        settings=_settings(group),
    )
    return (job, *_cache(group))


def _cache(group: nuke.Node) -> tuple[Path, str]:
    """The cache folder and its text for the Read: the knob when set (TCL allowed), else
    the shared rule: ``$RRTN_CACHE/nuke``, else ``rrtn_cache`` beside the saved script, named
    relative to the script when it lies beside it."""
    knob = group["cache"]
    text = str(knob.value()).strip()
    evaluated = str(knob.evaluate()) if text and isinstance(knob, nuke.File_Knob) else text
    script = str(nuke.root()["name"].value())
    folder = result_root(evaluated, os.environ.get("RRTN_CACHE", ""), script, RESULTS)
    return folder, text or document_path(folder, script, prefix=SCRIPT_FOLDER).replace("\\", "/")


def _settings(group: nuke.Node) -> HostSettings:
    model = group["model"].value()
    colorspace = str(group["colorspace"].value()).strip() or working_space()
    return replace(
        HostSettings(),
        server=group["server"].value().strip(),
        model="" if model == SERVER_DEFAULT_MODEL else model,
        passes=int(group["passes"].value()),
        aovs=tuple(aov for aov in AOVS if group[f"aov_{aov}"].value()),
        input_colorspace=script_colorspace(colorspace),
        # A node made before a knob existed restores with the knob's default.
        **{k.name: knob.value() for k in KNOBS if (knob := group.knob(k.name)) is not None},
    )


def _input_range(group: nuke.Node) -> tuple[int, int]:
    source = group.input(0)
    if source is not None:
        return source.firstFrame(), source.lastFrame()
    root = nuke.root()
    return int(root["first_frame"].value()), int(root["last_frame"].value())


def _status(group: nuke.Node, text: str) -> None:
    group["status"].setValue(text)

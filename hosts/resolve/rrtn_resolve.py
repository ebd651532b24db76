"""RRTN Restore for DaVinci Resolve: restore a timeline range and import it into the media pool.

Run from Workspace > Scripts (copy or link this file into Resolve's ``Scripts/Edit`` folder: a
dialog with the options, progress and Cancel) or from a terminal (``python rrtn_resolve.py
--help``, Resolve running). Needs DaVinci Resolve Studio 19.1+ (``Timeline.GetMarkInOut``)
with Preferences > System > General > External scripting using: Local.

It renders the marked in/out range (else the clip under the playhead) plus handles to EXR from
the source clip's track alone, restores it on the server, imports exactly the requested frames
into the media-pool bin "RRTN" (tagged, so a rerun recognises them) with the damage mask as the
clip's matte, and with ``--append`` lays the result on a new video track. The marks, render
settings, track switches and current bin are put back, whatever happens. Results go under
``--cache``, else by the rule every host follows (``$RRTN_CACHE/resolve``; a Resolve project is
no file to keep them beside, so else the user's cache folder). ``--farm`` (the dialog's "Write
farm job") renders the same way and writes an Open Job Description bundle restoring it instead,
into shared results only; a later run imports the farm's frames once they are all there.
Everything that is not Resolve's API is in :mod:`rrtn_plugin.client`; this stays one file, the
one the Scripts menu runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rrtn_plugin.client.farm import (
    farm_instructions,
    farm_model,
    farm_pending,
    find_program,
    keep_input,
    require_shared,
    write_farm_bundle,
)
from rrtn_plugin.client.jobs import JobResult, RestoreJob, finished_result, rendered_job
from rrtn_plugin.client.results import ResultRule, result_root, slug
from rrtn_plugin.client.running import job_steps
from rrtn_plugin.client.settings import (
    AOVS,
    KNOBS,
    HostSettings,
    Knob,
    add_options,
    from_options,
)
from rrtn_plugin.client.steps import Steps
from rrtn_plugin.client.versions import version_at_least
from rrtn_plugin.errors import ErrorKind, RRTNError

if TYPE_CHECKING:
    from fusionscript import (
        MediaPoolClipInfo,
        MediaPoolItem,
        Project,
        RenderSettings,
        Resolve,
        Timeline,
    )

BIN = "RRTN"
EXR_CODEC = "RGBHalfZIP"
TAG = "rrtn-plugin restore"
"""The start of a restored clip's Comments metadata (then the job's key)."""
MIN_VERSION = (19, 1)
DEFAULT_COLORSPACE = "Gamma 2.4 Encoded Rec.709"
"""What a render of an unmanaged (DaVinci YRGB) Rec.709 project holds; pass --colorspace when
the project's output colour space is another."""
RESULTS = ResultRule("", "--cache", subfolder="resolve")
"""Resolve's projects live in its database, not in files: no folder to keep results beside."""


@dataclass(frozen=True)
class Span:
    """Timeline frames to restore and the frames around them that may serve as context."""

    first: int
    last: int
    low: int
    high: int
    name: str


def connect() -> Resolve:
    """The running Resolve (the ``resolve`` Resolve hands menu scripts, else the script API)."""
    given = globals().get("resolve")
    if given is not None:
        return cast("Resolve", given)
    try:
        import DaVinciResolveScript
    except ImportError:
        raise RRTNError(
            "DaVinciResolveScript is not importable: set RESOLVE_SCRIPT_API and "
            "RESOLVE_SCRIPT_LIB and add $RESOLVE_SCRIPT_API/Modules to PYTHONPATH "
            "(see the README)",
            kind=ErrorKind.NOT_FOUND,
        ) from None
    app = DaVinciResolveScript.scriptapp("Resolve")
    if app is None:
        raise RRTNError(
            "Resolve does not answer: start DaVinci Resolve Studio and set "
            "Preferences > System > General > External scripting using: Local",
            kind=ErrorKind.NOT_FOUND,
        )
    return cast("Resolve", app)


def timeline_span(timeline: Timeline, handles: int) -> Span:
    """The marked video in/out range (marks count from the timeline's start), else the clip
    under the playhead; ``low``/``high`` bound the context."""
    start, end = timeline.GetStartFrame(), timeline.GetEndFrame()
    marks = timeline.GetMarkInOut().get("video")
    if marks is not None:
        first, last = start + marks["in"], start + marks["out"]
        if not start <= first <= last <= end:
            raise RRTNError(
                f"the marked range {first}-{last} is not inside the timeline {start}-{end}"
            )
        low, high = max(start, first - handles), min(end, last + handles)
    else:
        item = timeline.GetCurrentVideoItem()
        if item is None:
            raise RRTNError("mark an in/out range on the timeline or put the playhead on a clip")
        first, last = int(item.GetStart(False)), int(item.GetEnd(False)) - 1
        low, high = first, last
    return Span(first, last, low, high, f"{timeline.GetName()} {first}-{last}")


def is_restored(item: Any) -> bool:
    """Whether a timeline item shows an RRTN result (its clip carries the tag)."""
    clip = item.GetMediaPoolItem()
    return clip is not None and str(clip.GetMetadata("Comments") or "").startswith(TAG)


def source_track(timeline: Timeline, span: Span) -> int:
    """The top enabled video track with clips over the span, none of them an RRTN result."""
    for index in range(timeline.GetTrackCount("video"), 0, -1):
        if not timeline.GetIsTrackEnabled("video", index):
            continue
        items = [  # clips: titles and generators have no media pool item
            i
            for i in timeline.GetItemListInTrack("video", index)
            if i.GetStart(False) <= span.high
            and i.GetEnd(False) > span.low
            and i.GetMediaPoolItem() is not None
        ]
        if items and not any(is_restored(i) for i in items):
            return index
    raise RRTNError(f"no enabled video track holds an unrestored clip at {span.low}-{span.high}")


def render_steps(
    project: Project, timeline: Timeline, span: Span, folder: Path, cancelled: Callable[[], bool]
) -> Iterator[str]:
    """Render ``span``'s context from its source track alone to EXR in ``folder``, yielding
    progress; every setting it touches is put back when it ends, however it ends."""
    if "exr" not in project.GetRenderFormats().values():
        raise RRTNError("this Resolve offers no EXR render format")
    codecs = project.GetRenderCodecs("exr")
    if EXR_CODEC not in codecs.values():
        raise RRTNError(
            f"Resolve offers no {EXR_CODEC} EXR codec (it has: {', '.join(codecs.values())})"
        )
    track = source_track(timeline, span)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as put_back:  # undone last-in first-out: the marks last
        marks = timeline.GetMarkInOut()
        put_back.callback(_restore_marks, timeline, dict(marks))
        current = project.GetCurrentRenderFormatAndCodec()
        mode = project.GetCurrentRenderMode()
        put_back.callback(project.SetCurrentRenderMode, mode)
        put_back.callback(
            project.SetCurrentRenderFormatAndCodec, current["format"], current["codec"]
        )
        preset = f"rrtn-user-settings-{os.getpid()}"
        if project.SaveAsNewRenderPreset(preset):  # no GetRenderSettings: a preset keeps them
            put_back.callback(project.DeleteRenderPreset, preset)
            put_back.callback(project.LoadRenderPreset, preset)
        for kind in ("video", "subtitle"):
            for index in range(1, timeline.GetTrackCount(kind) + 1):
                enabled = timeline.GetIsTrackEnabled(kind, index)
                if enabled and (kind, index) != ("video", track):
                    timeline.SetTrackEnable(kind, index, False)
                    put_back.callback(timeline.SetTrackEnable, kind, index, True)
        project.SetCurrentRenderFormatAndCodec("exr", EXR_CODEC)
        project.SetCurrentRenderMode(1)  # one file per frame of the whole range, not per clip
        settings = {
            "SelectAllFrames": False,
            "MarkIn": span.low,
            "MarkOut": span.high,
            "TargetDir": str(folder),
            "CustomName": "rrtn_input",
            "ExportVideo": True,
            "ExportAudio": False,
        }
        if not project.SetRenderSettings(cast("RenderSettings", settings)):
            raise RRTNError("Resolve refused the render settings for the EXR render")
        job_id = project.AddRenderJob()
        put_back.callback(project.DeleteRenderJob, job_id)
        project.StartRendering([job_id], isInteractiveMode=False)
        while project.IsRenderingInProgress():
            if cancelled():
                project.StopRendering()
                raise RRTNError("render cancelled", kind=ErrorKind.CANCELLED)
            status = dict(project.GetRenderJobStatus(job_id))
            yield f"Rendering EXR: {status.get('CompletionPercentage', 0)} %"
        status = dict(project.GetRenderJobStatus(job_id))
        if status.get("JobStatus") != "Complete":
            raise RRTNError(
                f"the EXR render ended {status.get('JobStatus')}: "
                f"{status.get('Error', 'see the render queue')}"
            )


def _restore_marks(timeline: Timeline, marks: dict[str, Any]) -> None:
    timeline.ClearMarkInOut("all")
    for kind in ("video", "audio"):
        if kind in marks:
            timeline.SetMarkInOut(marks[kind]["in"], marks[kind]["out"], kind)


def import_result(
    resolve: Resolve,
    project: Project,
    job: RestoreJob,
    result: JobResult,
    offset: int,
    append: bool,
) -> MediaPoolItem:
    """Import the restored frames into the "RRTN" bin, tagged with the job's key, the mask as
    the clip's matte; the bin that was current stays current."""
    pool = project.GetMediaPool()
    root = pool.GetRootFolder()
    folder = next((f for f in root.GetSubFolderList() if f.GetName() == BIN), None)
    was_current = pool.GetCurrentFolder()
    pool.SetCurrentFolder(folder or pool.AddSubFolder(root, BIN))
    printf = re.sub(r"#+", lambda m: f"%0{len(m.group())}d", result.pattern)
    try:
        items = pool.ImportMedia(
            [{"FilePath": printf, "StartIndex": result.first, "EndIndex": result.last}]
        )
    finally:
        pool.SetCurrentFolder(was_current)
    if not items:
        raise RRTNError(f"Resolve did not import {printf} ({result.first}-{result.last})")
    item = items[0]
    item.SetMetadata("Comments", f"{TAG} {job.key()}")
    mask = result.aov_patterns.get("mask")
    if mask is not None:
        storage = resolve.GetMediaStorage()
        if not storage.AddClipMattesToMediaPool(item, [str(Path(mask).parent)], None):
            raise RRTNError(f"Resolve did not attach the mask {Path(mask).parent} as a matte")
    if append:
        timeline = project.GetCurrentTimeline()
        timeline.AddTrack("video", cast(Any, {}))  # no index: on top
        track = timeline.GetTrackCount("video")
        count = result.last - result.first + 1
        clip: MediaPoolClipInfo = {
            "mediaPoolItem": item,
            "startFrame": 0,
            "endFrame": count,  # exclusive since Resolve 19 (we need 19.1)
            "trackIndex": track,
            "recordFrame": result.first - offset,
        }
        # fusionscript-stubs 21.0 leaves this documented clip-info form off the overloads.
        if not pool.AppendToTimeline([clip]):  # type: ignore[arg-type]
            raise RRTNError(f"Resolve did not put {item.GetName()} on video track {track}")
    return item


def restore_steps(
    resolve: Resolve,
    settings: HostSettings,
    *,
    handles: int,
    cache: Path,
    append: bool = False,
    farm: bool = False,
    cancelled: Callable[[], bool] = lambda: False,
) -> Generator[str, None, JobResult | None]:
    """The whole script as steps (render, restore on the server, import), yielding progress;
    returns the job's result. With ``farm``, the render goes into the job's folder and a farm
    job bundle restoring it is written instead (None); the farm's finished frames are the
    result of a later run."""
    if not version_at_least(resolve.GetVersion(), MIN_VERSION):
        raise RRTNError(
            f"RRTN Restore needs DaVinci Resolve Studio 19.1 or later (this is "
            f"{resolve.GetVersionString()}): older versions cannot read the timeline's marks"
        )
    project = resolve.GetProjectManager().GetCurrentProject()
    timeline = project.GetCurrentTimeline() if project else None
    if timeline is None:
        raise RRTNError("open a project with a timeline first")
    span = timeline_span(timeline, handles)
    program = ""
    if farm:  # before the render: it would be for nothing
        require_shared(cache, setting="--cache")
        program = find_program(host="Resolve")
    staging = cache / "renders" / slug(f"{span.name}-{span.low}-{span.high}")
    try:
        yield from render_steps(project, timeline, span, staging, cancelled)
        job = rendered_job(
            staging,
            name=span.name,
            first=span.first,
            last=span.last,
            low=span.low,
            high=span.high,
            settings=settings,
        )
        if farm and finished_result(job, cache) is None:
            job = keep_input(job, cache)
            bundle = write_farm_bundle(job, cache, program=program, model=farm_model())
            yield farm_instructions(job, cache, bundle, program)
            return None
        pending = farm_pending(job, cache)
        if pending is not None:
            raise RRTNError(
                f"the farm job has written {pending[0]} of {pending[1]} frames to "
                f"{job.output_pattern(cache)}: run this again once it has finished"
            )
        result = yield from job_steps(job, cache, cancelled)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    pool = project.GetMediaPool()
    bin_ = next((f for f in pool.GetRootFolder().GetSubFolderList() if f.GetName() == BIN), None)
    tag = f"{TAG} {job.key()}"
    if bin_ is not None and any(c.GetMetadata("Comments") == tag for c in bin_.GetClipList()):
        yield f"Up to date: frames {span.first}-{span.last} are restored in the {BIN} bin"
        return result
    item = import_result(resolve, project, job, result, job.first - span.first, append)
    yield (
        f"Imported {item.GetName()} into the {BIN} bin "
        f"(frames {span.first}-{span.last}, {result.seconds:.1f} s)"
    )
    return result


def restore(
    resolve: Resolve,
    settings: HostSettings,
    *,
    handles: int,
    cache: Path,
    append: bool = False,
    farm: bool = False,
    progress: Callable[[str], None] = print,
) -> JobResult | None:
    """The whole script from a terminal: Ctrl-C cancels."""
    steps = Steps(
        lambda cancelled: restore_steps(
            resolve,
            settings,
            handles=handles,
            cache=cache,
            append=append,
            farm=farm,
            cancelled=cancelled,
        )
    )
    return cast("JobResult | None", steps.run(progress, interval=0.2))


def dialog(resolve: Resolve, fusion: Any, bmd: Any) -> None:
    """Workspace > Scripts: the options, a progress line and Cancel, in Resolve's UIManager;
    a timer drives the steps so the dialog stays live."""
    ui = fusion.UIManager
    dispatcher = bmd.UIDispatcher(ui)
    defaults = HostSettings()

    def row(label: str, element: Any) -> Any:
        return ui.HGroup([ui.Label({"Text": label, "Weight": 0.3}), element])

    def knob_row(knob: Knob) -> Any:  # a restore knob: a menu, a 0-1 number or a checkbox
        element = {"ID": knob.name, "ToolTip": knob.tooltip}
        if knob.type is bool:
            return ui.CheckBox({**element, "Text": knob.label, "Checked": knob.default})
        if knob.choices:
            return row(knob.label.capitalize(), ui.ComboBox(element))
        limits = {"Minimum": knob.minimum, "Maximum": knob.maximum, "Value": knob.default}
        spin = ui.DoubleSpinBox({**element, **limits, "SingleStep": 0.05, "Decimals": 2})
        return row(knob.label.capitalize(), spin)

    window = dispatcher.AddWindow(
        {"ID": "RRTNRestore", "WindowTitle": "RRTN Restore", "Geometry": [200, 200, 460, 500]},
        ui.VGroup(
            [
                row("Server", ui.LineEdit({"ID": "Server", "Text": defaults.server})),
                row("Model", ui.LineEdit({"ID": "Model", "PlaceholderText": "server default"})),
                row("Handles", ui.SpinBox({"ID": "Handles", "Value": 8, "Maximum": 500})),
                row("Passes", ui.SpinBox({"ID": "Passes", "Value": 0, "Maximum": 10})),
                row("Colour space", ui.LineEdit({"ID": "Colorspace", "Text": DEFAULT_COLORSPACE})),
                ui.HGroup(
                    [
                        ui.CheckBox({"ID": "Mask", "Text": "mask", "Checked": True}),
                        ui.CheckBox({"ID": "Repair", "Text": "repair"}),
                        ui.CheckBox({"ID": "Motion", "Text": "motion"}),
                        ui.CheckBox({"ID": "Append", "Text": "put on a new track"}),
                    ]
                ),
                *[knob_row(knob) for knob in KNOBS],
                row("Cache", ui.LineEdit({"ID": "Cache", "Text": str(default_cache())})),
                ui.Label({"ID": "Status", "Text": "Mark an in/out range or park on a clip."}),
                ui.HGroup(
                    [
                        ui.Button({"ID": "Start", "Text": "Restore"}),
                        ui.Button({"ID": "Farm", "Text": "Write farm job"}),
                        ui.Button({"ID": "Cancel", "Text": "Close"}),
                    ]
                ),
            ]
        ),
    )
    items = window.GetItems()
    for knob in KNOBS:
        if knob.choices:  # a ComboBox's items are added once it exists
            items[knob.name].AddItems(list(knob.choices))
            items[knob.name].CurrentIndex = knob.choices.index(str(knob.default))
    timer = ui.Timer({"ID": "RRTNTick", "Interval": 200})
    running: list[Steps] = []

    def start(event: Any, farm: bool = False) -> None:
        aovs = tuple(a for a in AOVS if items[a.capitalize()].Checked)
        try:
            settings = HostSettings(
                server=items["Server"].Text,
                model=items["Model"].Text.strip(),
                passes=int(items["Passes"].Value),
                input_colorspace=items["Colorspace"].Text.strip(),
                aovs=aovs,
                cuts=bool(items["cuts"].Checked),
                tone_guard=str(items["tone_guard"].CurrentText),
                repair_mode=str(items["repair_mode"].CurrentText),
                repair_strength=float(items["repair_strength"].Value),
            )
        except RRTNError as exc:
            items["Status"].Text = f"Error: {exc}"
            return
        handles, cache = int(items["Handles"].Value), Path(items["Cache"].Text)
        append = bool(items["Append"].Checked)
        running[:] = [
            Steps(
                lambda c: restore_steps(
                    resolve,
                    settings,
                    handles=handles,
                    cache=cache,
                    append=append,
                    farm=farm,
                    cancelled=c,
                )
            )
        ]
        items["Start"].Enabled = items["Farm"].Enabled = False
        items["Cancel"].Text = "Cancel"
        timer.Start()

    def tick(event: Any) -> None:
        if not running:
            return
        steps = running[0]
        steps.advance()
        items["Status"].Text = steps.text
        if steps.done:
            timer.Stop()
            running.clear()
            items["Start"].Enabled = items["Farm"].Enabled = True
            items["Cancel"].Text = "Close"

    def cancel(event: Any) -> None:
        if running:
            running[0].cancel()
        else:
            dispatcher.ExitLoop()

    def close(event: Any) -> None:
        if running:  # finish the steps so that the user's settings are put back
            running[0].finish()
        dispatcher.ExitLoop()

    window.On.Start.Clicked = start
    window.On.Farm.Clicked = lambda event: start(event, farm=True)
    window.On.Cancel.Clicked = cancel
    window.On.RRTNRestore.Close = close
    dispatcher.On.RRTNTick.Timeout = tick
    window.Show()
    dispatcher.RunLoop()
    window.Hide()


def default_cache() -> Path:
    """Where results go when no --cache is given: the rule every host follows."""
    return result_root("", os.environ.get("RRTN_CACHE", ""), "", RESULTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Restore a Resolve timeline range with RRTN.")
    add_options(parser, colorspace=DEFAULT_COLORSPACE, cache=default_cache())
    parser.add_argument("--append", action="store_true", help="put the result on a new track")
    parser.add_argument(
        "--farm",
        action="store_true",
        help="write an Open Job Description bundle restoring the range on a farm instead "
        "(--cache or $RRTN_CACHE must be shared storage); run again without it to import "
        "the farm's results",
    )
    args = parser.parse_args(argv)
    try:
        settings = from_options(args)
        restore(
            connect(),
            settings,
            handles=args.handles,
            cache=args.cache,
            append=args.append,
            farm=args.farm,
        )
    except RRTNError as exc:
        print(f"RRTN Restore: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if globals().get("fusion") is not None and globals().get("bmd") is not None:
        dialog(connect(), globals()["fusion"], globals()["bmd"])  # Workspace > Scripts
    else:
        sys.exit(main(sys.argv[1:] if getattr(sys, "argv", None) else []))

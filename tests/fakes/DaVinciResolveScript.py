"""A working stand-in for DaVinci Resolve's scripting API (the calls the RRTN script makes).

``scriptapp("Resolve")`` returns a Resolve holding one project with one timeline whose video
track 1 cuts between image-sequence clips. What the documented API promises is done for real:
a render job renders the marked timeline frames to EXR files (OpenImageIO, the codec's pixel
type, one file per frame named ``<CustomName><8-digit timeline frame>.exr``) in a thread, with
status and percentage while it runs; ``ImportMedia`` checks every file of the sequence exists;
``AddClipMattesToMediaPool`` checks its paths exist; ``AppendToTimeline`` puts items on tracks.
Timeline marks count from the timeline's start, as in the API's documented example.

It also reproduces what bites scripts in the real Resolve (README of the scripting API, as
shipped in Help > Documentation > Developer and typed by fusionscript-stubs 21.0, unless noted):

- Versions: ``GetVersion()`` returns ``[major, minor, patch, build, suffix]``; calls newer than
  the running version fail as unknown attributes do (a TypeError calling None):
  ``Timeline.GetMarkInOut``/``SetMarkInOut``/``ClearMarkInOut`` are "New in 19.1.0",
  ``AddTrack(type, newTrackOptions)`` with its options dict "New in 19.0.0".
- ``AppendToTimeline`` clipInfo ``endFrame`` is exclusive from Resolve 19 on (the item lasts
  ``endFrame - startFrame`` frames; inclusive in 18, one more frame): seen by scripts moving
  from 18.6 to 19.1 (nakano000/Resolve_Script PR #23) and measured on 21.0
  (samuelgursky/davinci-resolve-mcp issue #82).
- The render job's ``MarkIn``/``MarkOut`` are the timeline's in/out marks: setting them moves
  the user's marks (the Deliver page renders the timeline's In/Out range). There is no
  ``GetRenderSettings``; ``SaveAsNewRenderPreset``/``LoadRenderPreset``/``DeleteRenderPreset``
  keep and bring back the render settings, ``GetCurrentRenderFormatAndCodec`` and
  ``GetCurrentRenderMode`` read the rest.
- A render includes every enabled video track (an upper clip covers a lower one, a title is
  drawn over it), enabled subtitle tracks burnt in, and each clip's grade; its frames have the
  *timeline's* resolution (``Timeline.GetSetting("timelineResolutionWidth")``), which may
  differ from the project's (``Project.GetSetting``). ``SetTrackEnable``/``GetIsTrackEnabled``
  switch tracks. Each rendered EXR carries the time it was written (a ``DateTime`` header
  attribute, as OpenImageIO and most renderers write), so two renders of the same frames
  differ in their bytes.
- Menu scripts (Workspace > Scripts) get ``resolve``, ``fusion`` and ``bmd`` and no
  command-line arguments; dialogs are built with ``fusion.UIManager`` and
  ``bmd.UIDispatcher(ui)``: ``AddWindow(props, children)``, elements by ``ID`` (``GetItems``),
  handlers set as ``win.On.<ID>.Clicked`` / ``dispatcher.On.<TimerID>.Timeout``,
  ``RunLoop``/``ExitLoop`` (Resolve's Workflow Integration README, "UIManager" section, and
  the Fusion UI Manager examples). :class:`UIManager` models that much, with a scripted user
  (:data:`user_events`) instead of a screen. The elements are Qt widgets with Qt's property
  names: a ``ComboBox`` gets its items once built (``AddItem``/``AddItems``) and says the
  choice as ``CurrentIndex`` and ``CurrentText`` (QComboBox); a ``DoubleSpinBox`` holds a
  float ``Value`` that Qt keeps within ``Minimum``-``Maximum`` whatever is typed
  (QDoubleSpinBox; its use in UIManager dialogs: Andrew Hazelden's Fusion UI Manager
  examples, "Adding a DoubleSpinBox number field using Python").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

CODECS = {"RGB half (ZIP)": "RGBHalfZIP", "RGB float (no compression)": "RGBFloat"}


def _frame_file(printf: str, frame: int) -> Path:
    match = re.search(r"%0?(\d*)d", printf)
    if match is None:
        raise ValueError(f"{printf} has no %d")
    return Path(
        printf[: match.start()] + f"{frame:0{int(match.group(1) or 1)}d}" + printf[match.end() :]
    )


def _unknown(version: list[Any], since: tuple[int, ...], name: str) -> None:
    """Resolve answers an attribute it does not know with None: calling it is a TypeError."""
    if tuple(version[: len(since)]) < since:
        raise TypeError(f"'NoneType' object is not callable ({name} is new in {since})")


class MediaPoolItem:
    def __init__(self, name: str, printf: str, first: int, last: int) -> None:
        self.name, self.printf, self.first, self.last = name, printf, first, last
        self.mattes: list[str] = []
        self.metadata: dict[str, str] = {}

    def GetName(self) -> str:
        return self.name

    def GetMetadata(self, metadataType: str | None = None) -> str | dict[str, str]:
        if metadataType is None:
            return dict(self.metadata)
        return self.metadata.get(metadataType, "")

    def SetMetadata(self, key: str | dict[str, str], value: str = "") -> bool:
        self.metadata.update(key if isinstance(key, dict) else {key: value})
        return True

    def frame(self, number: int) -> np.ndarray:
        """The source file numbered ``number``."""
        image = oiio.ImageInput.open(str(_frame_file(self.printf, number)))
        pixels = image.read_image(format="float")
        image.close()
        return pixels


class Title(MediaPoolItem):
    """A text title: drawn over what lies below it (here, +1 on its top rows)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "", 0, 0)


class TimelineItem:
    def __init__(self, item: MediaPoolItem, start: int, source_start: int, length: int) -> None:
        self.item, self.start, self.source_start, self.length = item, start, source_start, length
        self.grade = 1.0  # the clip's grade (Color page), a gain here

    def GetName(self) -> str:
        return self.item.GetName()

    def GetStart(self, subframe_precision: bool = False) -> int:
        return self.start

    def GetEnd(self, subframe_precision: bool = False) -> int:
        return self.start + self.length  # one past the last frame: start + duration

    def GetDuration(self, subframe_precision: bool = False) -> int:
        return self.length

    def GetMediaPoolItem(self) -> MediaPoolItem | None:
        """ "The media pool item corresponding to the timeline item if one exists" (stubs):
        a title or generator has none."""
        return None if isinstance(self.item, Title) else self.item


class Track:
    def __init__(self) -> None:
        self.items: list[TimelineItem] = []
        self.enabled = True


class Timeline:
    def __init__(self, name: str, start: int) -> None:
        self.name, self.start = name, start
        self.tracks: dict[str, list[Track]] = {"video": [Track()], "subtitle": []}
        self.marks: dict[str, dict[str, int]] = {}
        self.playhead = start
        self.project: Project | None = None
        self.settings: dict[str, str] = {}  # empty: the project's settings

    @property
    def video(self) -> list[Track]:
        return self.tracks["video"]

    def _version(self) -> list[Any]:
        return self.project.resolve.version if self.project and self.project.resolve else [20]

    def GetName(self) -> str:
        return self.name

    def GetStartFrame(self) -> int:
        return self.start

    def GetEndFrame(self) -> int:
        return max(i.GetEnd() for track in self.video for i in track.items) - 1

    def GetSetting(self, name: str) -> str:
        if name in self.settings:
            return self.settings[name]
        assert self.project is not None
        return self.project.GetSetting(name)

    def GetMarkInOut(self) -> dict[str, dict[str, int]]:
        _unknown(self._version(), (19, 1), "Timeline.GetMarkInOut")
        return {k: dict(v) for k, v in self.marks.items()}

    def SetMarkInOut(self, mark_in: int, mark_out: int, type: str = "all") -> bool:
        _unknown(self._version(), (19, 1), "Timeline.SetMarkInOut")
        for kind in ("video", "audio") if type == "all" else (type,):
            self.marks[kind] = {"in": mark_in, "out": mark_out}
        return True

    def ClearMarkInOut(self, type: str = "all") -> bool:
        _unknown(self._version(), (19, 1), "Timeline.ClearMarkInOut")
        for kind in ("video", "audio") if type == "all" else (type,):
            self.marks.pop(kind, None)
        return True

    def GetCurrentVideoItem(self) -> TimelineItem | None:
        for track in reversed(self.video):
            item = next((i for i in track.items if i.start <= self.playhead < i.GetEnd()), None)
            if item is not None and track.enabled:
                return item
        return None

    def item_at(self, frame: int, track: int = 0) -> TimelineItem | None:
        return next((i for i in self.video[track].items if i.start <= frame < i.GetEnd()), None)

    def GetTrackCount(self, track_type: str) -> int:
        return len(self.tracks.get(track_type, []))

    def AddTrack(self, track_type: str, options: Any = None) -> bool:
        if isinstance(options, dict):
            _unknown(self._version(), (19, 0), "Timeline.AddTrack with newTrackOptions")
        self.tracks[track_type].append(Track())
        return True

    def SetTrackEnable(self, track_type: str, index: int, enabled: bool) -> bool:
        self.tracks[track_type][index - 1].enabled = bool(enabled)
        return True

    def GetIsTrackEnabled(self, track_type: str, index: int) -> bool:
        return self.tracks[track_type][index - 1].enabled

    def GetItemListInTrack(self, track_type: str, index: int) -> list[TimelineItem]:
        return list(self.tracks[track_type][index - 1].items)

    def render(self, frame: int, size: tuple[int, int]) -> tuple[np.ndarray, list[int]]:
        """What the Deliver page renders at ``frame``: enabled tracks bottom up, each clip
        graded, titles over, subtitles burnt in, at the timeline's resolution; and which video
        tracks showed something."""
        picture: np.ndarray | None = None
        shown = []
        for number, track in enumerate(self.video, 1):
            item = next((i for i in track.items if i.start <= frame < i.GetEnd()), None)
            if not track.enabled or item is None:
                continue
            shown.append(number)
            if isinstance(item.item, Title):
                if picture is not None:
                    picture[:4] += 1.0
                continue
            rgb = item.item.frame(item.source_start + frame - item.start)[:, :, :3] * item.grade
            picture = rgb.astype(np.float32)
        if picture is None:
            raise LookupError(f"no clip at frame {frame}")
        if any(
            t.enabled and any(i.start <= frame < i.GetEnd() for i in t.items)
            for t in self.tracks["subtitle"]
        ):
            picture[-4:] += 1.0
        width, height = size
        rows = np.arange(height) * picture.shape[0] // height
        cols = np.arange(width) * picture.shape[1] // width
        return np.ascontiguousarray(picture[rows][:, cols]), shown


class Folder:
    def __init__(self, name: str) -> None:
        self.name, self.clips, self.subfolders = name, [], []

    def GetName(self) -> str:
        return self.name

    def GetSubFolderList(self) -> list[Folder]:
        return list(self.subfolders)

    def GetClipList(self) -> list[MediaPoolItem]:
        return list(self.clips)


class MediaPool:
    def __init__(self, project: Project) -> None:
        self.project, self.root = project, Folder("Master")
        self.current = self.root

    def GetRootFolder(self) -> Folder:
        return self.root

    def AddSubFolder(self, folder: Folder, name: str) -> Folder:
        child = Folder(name)
        folder.subfolders.append(child)
        return child

    def GetCurrentFolder(self) -> Folder:
        return self.current

    def SetCurrentFolder(self, folder: Folder) -> bool:
        self.current = folder
        return True

    def ImportMedia(self, clips: list[dict[str, Any]]) -> list[MediaPoolItem]:
        items = []
        for clip in clips:
            frames = range(clip["StartIndex"], clip["EndIndex"] + 1)
            if not all(_frame_file(clip["FilePath"], f).is_file() for f in frames):
                return []  # Resolve imports nothing and returns an empty list
            name = Path(clip["FilePath"]).name.replace("%", "")
            items.append(MediaPoolItem(name, clip["FilePath"], frames[0], frames[-1]))
        self.current.clips += items
        return items

    def AppendToTimeline(self, clips: list[dict[str, Any]]) -> list[TimelineItem]:
        timeline = self.project.timeline
        exclusive = self.project.resolve is None or self.project.resolve.version[0] >= 19
        placed = []
        for clip in clips:
            length = clip["endFrame"] - clip["startFrame"] + (0 if exclusive else 1)
            item = TimelineItem(
                clip["mediaPoolItem"], clip["recordFrame"], clip["startFrame"], length
            )
            timeline.video[clip["trackIndex"] - 1].items.append(item)
            placed.append(item)
        return placed


class MediaStorage:
    def AddClipMattesToMediaPool(
        self, item: MediaPoolItem, paths: list[str], stereo_eye: str | None = None
    ) -> bool:
        if not all(Path(p).exists() for p in paths):
            return False
        item.mattes += paths
        return True


RENDER_SETTINGS = {
    "SelectAllFrames",
    "MarkIn",
    "MarkOut",
    "TargetDir",
    "CustomName",
    "ExportVideo",
    "ExportAudio",
    "FormatWidth",
    "FormatHeight",
}


class Project:
    def __init__(self, timeline: Timeline, width: int, height: int) -> None:
        self.timeline, self.pool = timeline, MediaPool(self)
        timeline.project = self
        self.resolve: Resolve | None = None
        self.settings = {
            "timelineResolutionWidth": str(width),
            "timelineResolutionHeight": str(height),
        }
        self.format, self.codec, self.mode = "mov", "H264", 0
        self.render_settings: dict[str, Any] = {
            "TargetDir": "/deliveries/reel1",
            "CustomName": "Reel 1 review",
            "ExportAudio": True,
            "ExportVideo": True,
            "SelectAllFrames": True,
        }
        self.presets: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.rendered: list[tuple[int, int]] = []  # each job's timeline frames, for tests
        self.rendered_tracks: list[set[int]] = []  # the video tracks each job showed

    def GetCurrentTimeline(self) -> Timeline:
        return self.timeline

    def GetMediaPool(self) -> MediaPool:
        return self.pool

    def GetSetting(self, name: str) -> str:
        return self.settings[name]

    def GetRenderFormats(self) -> dict[str, str]:
        return {"QuickTime": "mov", "OpenEXR": "exr", "DPX": "dpx"}

    def GetRenderCodecs(self, render_format: str) -> dict[str, str]:
        return dict(CODECS) if render_format == "exr" else {"H.264": "H264"}

    def GetCurrentRenderFormatAndCodec(self) -> dict[str, str]:
        return {"format": self.format, "codec": self.codec}

    def SetCurrentRenderFormatAndCodec(self, fmt: str, codec: str) -> bool:
        if codec not in self.GetRenderCodecs(fmt).values():
            return False
        self.format, self.codec = fmt, codec
        return True

    def GetCurrentRenderMode(self) -> int:
        return self.mode

    def SetCurrentRenderMode(self, mode: int) -> bool:
        self.mode = mode
        return True

    def SetRenderSettings(self, settings: dict[str, Any]) -> bool:
        if not set(settings) <= RENDER_SETTINGS:
            return False
        self.render_settings.update(settings)
        if "MarkIn" in settings or "MarkOut" in settings:  # the render range is the timeline's
            start = self.timeline.start
            mark_in = self.render_settings.get("MarkIn", start) - start
            mark_out = self.render_settings.get("MarkOut", start) - start
            for kind in ("video", "audio"):
                self.timeline.marks[kind] = {"in": mark_in, "out": mark_out}
        return True

    def SaveAsNewRenderPreset(self, name: str) -> bool:
        if name in self.presets:
            return False
        self.presets[name] = {
            "settings": dict(self.render_settings),
            "format": self.format,
            "codec": self.codec,
        }
        return True

    def LoadRenderPreset(self, name: str) -> bool:
        preset = self.presets.get(name)
        if preset is None:
            return False
        self.render_settings = dict(preset["settings"])
        self.format, self.codec = preset["format"], preset["codec"]
        return True

    def DeleteRenderPreset(self, name: str) -> bool:
        return self.presets.pop(name, None) is not None

    def AddRenderJob(self) -> str:
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = {
            "settings": dict(self.render_settings),
            "format": self.format,
            "codec": self.codec,
            "mode": self.mode,
            "status": {"JobStatus": "Ready", "CompletionPercentage": 0},
        }
        return job_id

    def DeleteRenderJob(self, job_id: str) -> bool:
        return self.jobs.pop(job_id, None) is not None

    def StartRendering(self, job_ids: list[str], isInteractiveMode: bool = False) -> bool:
        self._stop.clear()
        self._thread = threading.Thread(target=self._render, args=(list(job_ids),))
        self._thread.start()
        return True

    def IsRenderingInProgress(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def StopRendering(self) -> None:
        self._stop.set()

    def GetRenderJobStatus(self, job_id: str) -> dict[str, Any]:
        return dict(self.jobs[job_id]["status"])

    def _render(self, job_ids: list[str]) -> None:
        size = (
            int(self.timeline.GetSetting("timelineResolutionWidth")),
            int(self.timeline.GetSetting("timelineResolutionHeight")),
        )
        for job_id in job_ids:
            job = self.jobs[job_id]
            settings, status = job["settings"], job["status"]
            first, last = settings["MarkIn"], settings["MarkOut"]
            self.rendered.append((first, last))
            tracks: set[int] = set()
            self.rendered_tracks.append(tracks)
            pixel_type = "half" if "Half" in job["codec"] else "float"
            status["JobStatus"] = "Rendering"
            for n, frame in enumerate(range(first, last + 1)):
                if self._stop.is_set():
                    status["JobStatus"] = "Cancelled"
                    return
                try:
                    rgb, shown = self.timeline.render(frame, size)
                except LookupError as exc:
                    status.update(JobStatus="Failed", Error=str(exc))
                    return
                tracks.update(shown)
                spec = oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, pixel_type)
                spec.attribute("compression", "zip")
                target = Path(settings["TargetDir"]) / f"{settings['CustomName']}{frame:08d}.exr"
                out = oiio.ImageOutput.create(str(target))
                out.open(str(target), spec)
                out.write_image(rgb)
                out.close()
                status["CompletionPercentage"] = int(100 * (n + 1) / (last - first + 1))
            status["JobStatus"] = "Complete"


class ProjectManager:
    def __init__(self, project: Project) -> None:
        self.project = project

    def GetCurrentProject(self) -> Project:
        return self.project


class Resolve:
    def __init__(self, project: Project, version: tuple[int, ...] = (20, 2, 1, 5)) -> None:
        self.manager, self.storage = ProjectManager(project), MediaStorage()
        self.version: list[Any] = [*version, ""]
        project.resolve = self
        self.fusion = Fusion()

    def GetProjectManager(self) -> ProjectManager:
        return self.manager

    def GetMediaStorage(self) -> MediaStorage:
        return self.storage

    def GetVersion(self) -> list[Any]:
        return list(self.version)

    def GetVersionString(self) -> str:
        return ".".join(str(v) for v in self.version[:3])

    def Fusion(self) -> Fusion:
        return self.fusion


# -- UIManager: dialogs for menu scripts ------------------------------------------------------


class Element:
    """A UIManager element: its properties (ID, Text, Value, Checked, Enabled …) as
    attributes, its children for layouts."""

    def __init__(self, kind: str, props: dict[str, Any], children: list[Element]) -> None:
        self.kind, self.children = kind, children
        self.Enabled = True
        self.__dict__.update(props)

    def __getattr__(self, name: str) -> Any:
        """Properties never set read as Qt's defaults."""
        defaults = {"Checked": False, "Text": "", "Value": 0, "PlaceholderText": ""}
        if name in defaults:
            return defaults[name]
        raise AttributeError(name)

    def walk(self) -> list[Element]:
        return [self, *(e for child in self.children for e in child.walk())]


class ComboBoxElement(Element):
    """A QComboBox: items added after it is built; no item chosen (-1) until there are."""

    def __init__(self, kind: str, props: dict[str, Any], children: list[Element]) -> None:
        super().__init__(kind, props, children)
        self.items: list[str] = []
        self.CurrentIndex = -1

    def AddItem(self, text: str) -> None:
        self.items.append(text)
        if self.CurrentIndex < 0:
            self.CurrentIndex = 0  # Qt selects the first item added

    def AddItems(self, texts: list[str]) -> None:
        for text in texts:
            self.AddItem(text)

    @property
    def CurrentText(self) -> str:
        return self.items[self.CurrentIndex] if 0 <= self.CurrentIndex < len(self.items) else ""


class TimerElement(Element):
    def Start(self) -> None:
        self.active = True

    def Stop(self) -> None:
        self.active = False


class UIManager:
    """``fusion.UIManager``: element constructors ``ui.Label({...})``, layouts
    ``ui.VGroup([...])`` or ``ui.VGroup({...}, [...])``, and ``ui.Timer({...})``."""

    def __init__(self) -> None:
        self.timers: list[TimerElement] = []

    def __getattr__(self, kind: str) -> Callable[..., Element]:
        def make(props: Any = None, children: Any = None) -> Element:
            if isinstance(props, list):
                props, children = {}, props
            if kind == "Timer":
                timer = TimerElement(kind, {"Interval": 1000, **(props or {})}, [])
                timer.active = False
                self.timers.append(timer)
                return timer
            if kind == "ComboBox":
                return ComboBoxElement(kind, dict(props or {}), [])
            if kind == "DoubleSpinBox":  # Qt's defaults: 0 to 99.99
                props = {"Minimum": 0.0, "Maximum": 99.99, "Value": 0.0, **(props or {})}
            return Element(kind, dict(props or {}), list(children or []))

        return make


class _Handlers:
    """``win.On.<ID>.<Event> = handler``."""

    def __init__(self) -> None:
        self.table: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {}

    def __getattr__(self, element_id: str) -> Any:
        table = self.table

        class _Events:
            def __setattr__(self, event: str, handler: Callable[[dict[str, Any]], Any]) -> None:
                table[(element_id, event)] = handler

        return _Events()


class Window:
    def __init__(self, props: dict[str, Any], children: list[Element]) -> None:
        self.root = Element("Window", props, children)
        self.On = _Handlers()
        self.shown = False

    def GetItems(self) -> dict[str, Element]:
        return {e.ID: e for e in self.root.walk() if "ID" in e.__dict__}

    def Find(self, element_id: str) -> Element:
        return self.GetItems()[element_id]

    def Show(self) -> None:
        self.shown = True

    def Hide(self) -> None:
        self.shown = False


user_events: list[tuple[int, str, str]] = []
"""What the scripted user does in :meth:`UIDispatcher.RunLoop`: (tick, element ID, event),
done once the loop has run that many ticks (timers fire once per tick); (tick, "type",
"ID=text;ID=text") types into fields (SpinBox values, CheckBox 1/0, the ComboBox item
chosen)."""
dialogs: list[Window] = []


class UIDispatcher:
    """``bmd.UIDispatcher(ui)``: windows, timer handlers, the event loop."""

    def __init__(self, ui: UIManager) -> None:
        self.ui, self.On, self.windows = ui, _Handlers(), []
        self._exit: int | None = None

    def AddWindow(self, props: dict[str, Any], children: Any) -> Window:
        window = Window(props, children if isinstance(children, list) else [children])
        self.windows.append(window)
        dialogs.append(window)
        return window

    def ExitLoop(self, code: int = 0) -> None:
        self._exit = code

    def RunLoop(self, max_ticks: int = 100_000) -> int:
        import time

        events = sorted(user_events)
        tick = 0
        while self._exit is None and tick < max_ticks:
            tick += 1
            while events and events[0][0] <= tick:
                _, element_id, event = events.pop(0)
                if element_id == "type":  # the user types into fields: "ID=text;ID=text"
                    for window in self.windows:
                        for assignment in event.split(";"):
                            key, _, value = assignment.partition("=")
                            element = window.GetItems()[key]
                            if isinstance(element, ComboBoxElement):  # picks an item
                                element.CurrentIndex = element.items.index(value)
                                continue
                            attribute = {
                                "SpinBox": "Value",
                                "DoubleSpinBox": "Value",
                                "CheckBox": "Checked",
                            }.get(element.kind, "Text")
                            typed: Any = value
                            if element.kind == "DoubleSpinBox":  # Qt keeps it in range
                                typed = min(max(float(value), element.Minimum), element.Maximum)
                            elif attribute == "Value":
                                typed = int(value)
                            elif attribute == "Checked":
                                typed = value == "1"
                            setattr(element, attribute, typed)
                    continue
                for window in self.windows:
                    handler = window.On.table.get((element_id, event))
                    if handler is not None:
                        handler({"who": element_id})
            for timer in self.ui.timers:
                if timer.active:
                    handler = self.On.table.get((timer.ID, "Timeout"))
                    if handler is not None:
                        handler({"who": timer.ID})
                    time.sleep(min(timer.Interval, 50) / 1000)
            if not events and not any(t.active for t in self.ui.timers):
                break  # nothing more will happen: the user walked away
        return self._exit or 0


class Fusion:
    def __init__(self) -> None:
        self.UIManager = UIManager()


class _Bmd:
    def UIDispatcher(self, ui: UIManager) -> UIDispatcher:
        return UIDispatcher(ui)


bmd = _Bmd()
app: Resolve | None = None
"""What ``scriptapp("Resolve")`` returns: a test sets it (None: Resolve is not running)."""


def scriptapp(name: str) -> Resolve | None:
    return app if name == "Resolve" else None

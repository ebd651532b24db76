"""A working stand-in for the parts of Nuke's Python API the RRTN adapter uses (Nuke 13-16).

Nuke cannot run here, so this fake does the real work its documented API promises: nodes live
in groups and connect; ``nuke.execute`` renders a Write's input to files (OpenImageIO, the
Write's pattern, EXR 32-bit float, raw); a Read reads its files for a frame (black outside its
range when before/after are "black"); ``channels()`` names EXR channels as Nuke does (R, G, B, A
→ ``rgba.red`` …, ``rrtn_mask.Y`` kept); ``executeInMainThread`` queues calls for the main loop
(:func:`run_main_loop`); ``ProgressTask`` records progress and can be cancelled by a test.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import OpenImageIO as oiio

STARTLINE, INPUTS, HIDDEN_INPUTS = 0x1000, 0x1, 0x2
WRITE_ALL, TO_SCRIPT = 0x8, 0x1
NUKE_CHANNELS = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}


class Knob:
    def __init__(self, name: str, label: str = "", value: Any = None) -> None:
        self._name, self.label, self._value, self.flags = name, label, value, 0

    def name(self) -> str:
        return self._name

    def value(self) -> Any:
        return self._value

    def getValue(self) -> Any:
        return self._value

    def setValue(self, value: Any) -> bool:
        self._value = value
        return True

    def setFlag(self, flag: int) -> None:
        self.flags |= flag

    def clearFlag(self, flag: int) -> None:
        self.flags &= ~flag


class Tab_Knob(Knob):
    pass


class String_Knob(Knob):
    def __init__(self, name: str, label: str = "", value: str = "") -> None:
        super().__init__(name, label, value)


class File_Knob(String_Knob):
    pass


class Text_Knob(String_Knob):
    pass


class Int_Knob(Knob):
    def __init__(self, name: str, label: str = "") -> None:
        super().__init__(name, label, 0)

    def setValue(self, value: Any) -> bool:
        self._value = int(value)
        return True


class Boolean_Knob(Knob):
    def __init__(self, name: str, label: str = "", value: bool = False) -> None:
        super().__init__(name, label, bool(value))


class Enumeration_Knob(Knob):
    def __init__(self, name: str, label: str, values: list[str]) -> None:
        super().__init__(name, label, values[0] if values else "")
        self.items = list(values)

    def setValues(self, values: list[str]) -> None:
        self.items = list(values)
        if self._value not in self.items:
            self._value = self.items[0] if self.items else ""

    def setValue(self, value: Any) -> bool:
        if value not in self.items:
            raise ValueError(f"{value!r} is not one of {self.items}")
        self._value = value
        return True


class PyScript_Knob(Knob):
    def __init__(self, name: str, label: str = "", command: str = "") -> None:
        super().__init__(name, label, command)

    def execute(self) -> None:
        exec(self._value, {"nuke": _module(), "__builtins__": __builtins__})


class Node:
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, parent: Group | None, name: str, **knobs: Any) -> None:
        self._knobs: dict[str, Knob] = {
            "name": Knob("name", "", name),
            "disable": Knob("disable", "", False),
        }
        for key, value in {**self.DEFAULTS, **knobs}.items():
            self._knobs.setdefault(key, Knob(key)).setValue(value)
        self._inputs: list[Node | None] = []
        self._parent = parent
        if parent is not None:
            parent._children.append(self)

    def Class(self) -> str:
        return type(self).__name__

    def name(self) -> str:
        return str(self._knobs["name"].value())

    def fullName(self) -> str:
        if self._parent is None or self._parent._parent is None:
            return self.name()
        return f"{self._parent.fullName()}.{self.name()}"

    def addKnob(self, knob: Knob) -> None:
        self._knobs[knob.name()] = knob

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def __getitem__(self, name: str) -> Knob:
        return self._knobs[name]

    def input(self, index: int) -> Node | None:
        return self._inputs[index] if index < len(self._inputs) else None

    def setInput(self, index: int, node: Node | None) -> bool:
        self._inputs += [None] * (index + 1 - len(self._inputs))
        self._inputs[index] = node
        return True

    def dependencies(self, mask: int = INPUTS) -> list[Node]:
        return [n for n in self._inputs if n is not None]

    def writeKnobs(self, flags: int = 0) -> str:
        return " ".join(
            f"{k} {v.value()!r}"
            for k, v in sorted(self._knobs.items())
            if not isinstance(v, Text_Knob)
        )

    def _upstream(self) -> Node:
        node = self.input(0)
        if node is None:
            raise RuntimeError(f"{self.name()}: no input")
        return node

    # What flows through: frame range, size, channels and pixels.
    def firstFrame(self) -> int:
        return self._upstream().firstFrame()

    def lastFrame(self) -> int:
        return self._upstream().lastFrame()

    def width(self) -> int:
        return self._upstream().width()

    def height(self) -> int:
        return self._upstream().height()

    def channels(self) -> list[str]:
        return self._upstream().channels()

    def render(self, frame: int) -> tuple[list[str], np.ndarray]:
        return self._upstream().render(frame)


class Read(Node):
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "file": "",
        "first": 1,
        "last": 1,
        "origfirst": 1,
        "origlast": 1,
        "raw": False,
        "before": "hold",
        "after": "hold",
    }

    def firstFrame(self) -> int:
        return int(self["first"].value())

    def lastFrame(self) -> int:
        return int(self["last"].value())

    def _spec(self) -> oiio.ImageSpec:
        path = frame_file(self["file"].value(), self.firstFrame())
        image = oiio.ImageInput.open(str(path))
        if image is None:
            raise RuntimeError(f"{self.name()}: cannot open {path}")
        spec = image.spec()
        image.close()
        return spec

    def width(self) -> int:
        return int(self._spec().width)

    def height(self) -> int:
        return int(self._spec().height)

    def channels(self) -> list[str]:
        return [nuke_channel(c) for c in self._spec().channelnames]

    def render(self, frame: int) -> tuple[list[str], np.ndarray]:
        first, last = self.firstFrame(), self.lastFrame()
        outside = (frame < first and self["before"].value() == "black") or (
            frame > last and self["after"].value() == "black"
        )
        spec = self._spec()
        if outside:
            return self.channels(), np.zeros((spec.height, spec.width, spec.nchannels), np.float32)
        image = oiio.ImageInput.open(
            str(frame_file(self["file"].value(), min(max(frame, first), last)))
        )
        pixels = image.read_image(format="float")
        image.close()
        return self.channels(), pixels


class Write(Node):
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "file": "",
        "file_type": "",
        "raw": False,
        "datatype": "16 bit half",
        "compression": "Zip (1 scanline)",
        "channels": "rgb",
        "create_directories": False,
    }


class Input(Node):
    def _upstream(self) -> Node:
        assert self._parent is not None
        node = self._parent.input(0)
        if node is None:
            raise RuntimeError(f"{self._parent.name()}: input not connected")
        return node


class Output(Node):
    pass


class Group(Node):
    def __init__(self, parent: Group | None, name: str, **knobs: Any) -> None:
        super().__init__(parent, name, **knobs)
        self._children: list[Node] = []

    def node(self, name: str) -> Node | None:
        return next((n for n in self._children if n.name() == name), None)

    def nodes(self) -> list[Node]:
        return list(self._children)

    def __enter__(self) -> Group:
        _context.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _context.pop()

    def _upstream(self) -> Node:
        output = next((n for n in self._children if isinstance(n, Output)), None)
        if output is None:
            raise RuntimeError(f"{self.name()}: no Output node")
        return output


class Root(Group):
    pass


class _Nodes:
    """``nuke.nodes.Read(...)``: a node made in the current group, knobs set, not connected."""

    def __getattr__(self, cls: str) -> Callable[..., Node]:
        kinds = {"Read": Read, "Write": Write, "Input": Input, "Output": Output, "Group": Group}

        def make(**knobs: Any) -> Node:
            parent = _context[-1]
            name = knobs.pop("name", cls)
            taken = {n.name() for n in parent.nodes()}
            unique, count = name, 1
            while unique in taken:
                unique, count = f"{name}{count}", count + 1
            return kinds[cls](parent, unique, **knobs)

        return make


class ProgressTask:
    instances: ClassVar[list[ProgressTask]] = []
    cancel_when: Callable[[ProgressTask], bool] = staticmethod(lambda task: False)

    def __init__(self, title: str) -> None:
        self.title, self.progress, self.messages = title, 0, []
        ProgressTask.instances.append(self)

    def setProgress(self, percent: int) -> None:
        self.progress = percent

    def setMessage(self, text: str) -> None:
        self.messages.append(text)

    def isCancelled(self) -> bool:
        return ProgressTask.cancel_when(self)


class _Menu:
    def __init__(self) -> None:
        self.commands: dict[str, Any] = {}

    def addCommand(self, path: str, command: Any, *args: Any, **kwargs: Any) -> None:
        self.commands[path] = command


def nuke_channel(exr_name: str) -> str:
    """How Nuke names an EXR channel: R → rgba.red, layer.R → layer.red, others as they are."""
    layer, _, channel = exr_name.rpartition(".")
    return f"{layer or 'rgba'}.{NUKE_CHANNELS.get(channel, channel)}"


def frame_file(pattern: str, frame: int) -> Path:
    """Nuke's file patterns: ``####`` (padded to the count) or ``%04d``."""
    printf = re.search(r"%0?(\d*)d", pattern)
    if printf:
        width = int(printf.group(1) or 1)
        return Path(pattern[: printf.start()] + f"{frame:0{width}d}" + pattern[printf.end() :])
    run = re.search(r"#+", pattern)
    if run is None:
        return Path(pattern)
    return Path(pattern[: run.start()] + f"{frame:0{len(run.group())}d}" + pattern[run.end() :])


def execute(node: Node, start: int, end: int, incr: int = 1) -> None:
    """Render a Write's input for frames start..end to its files (blocking, like Nuke)."""
    if not isinstance(node, Write):
        raise RuntimeError(f"{node.name()} cannot be executed")
    if node["disable"].value():
        raise RuntimeError(f"{node.name()} is disabled")
    if node["file_type"].value() != "exr" or not node["raw"].value():
        raise RuntimeError("this fake renders raw EXR only")
    formats = {"32 bit float": "float", "16 bit half": "half"}
    for frame in range(start, end + 1, incr):
        names, pixels = node.render(frame)
        keep = [i for i, n in enumerate(names) if n.startswith("rgba.")]
        if node["channels"].value() == "rgb":
            keep = keep[:3]
        spec = oiio.ImageSpec(
            pixels.shape[1], pixels.shape[0], len(keep), formats[node["datatype"].value()]
        )
        spec.channelnames = [names[i].split(".")[1][0].upper() for i in keep]
        spec.attribute("compression", "zip")
        target = frame_file(node["file"].value(), frame)
        if not target.parent.is_dir():
            if not node["create_directories"].value():
                raise RuntimeError(f"{node.name()}: can't write {target}: no such directory")
            target.parent.mkdir(parents=True)
        out = oiio.ImageOutput.create(str(target))
        out.open(str(target), spec)
        out.write_image(np.ascontiguousarray(pixels[:, :, keep]))
        out.close()
        executed.append((node.name(), frame))


def executeInMainThread(
    call: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> None:
    with _lock:
        _main_queue.append((call, args, kwargs or {}))


def run_main_loop(until: Callable[[], bool], timeout: float = 120.0) -> None:
    """Test helper: run queued main-thread calls until ``until()`` holds."""
    import time

    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the main loop waited too long")
        with _lock:
            calls = list(_main_queue)
            _main_queue.clear()
        for call, args, kwargs in calls:
            call(*args, **kwargs)
        time.sleep(0.02)


def root() -> Root:
    return _root


def menu(name: str) -> _Menu:
    return _menus.setdefault(name, _Menu())


def message(text: str) -> None:
    messages.append(text)


def selectedNodes() -> list[Node]:
    return list(selection)


def selectedNode() -> Node:
    if not selection:
        raise ValueError("no node selected")
    return selection[-1]


def thisNode() -> Node:
    return this_node[-1]


def reset() -> None:
    """Test helper: a new, empty script."""
    global _root
    _root = Root(
        None,
        "root",
        proxy=False,
        first_frame=1,
        last_frame=100,
        colorManagement="Nuke",
        workingSpaceLUT="linear",
    )
    _context[:] = [_root]
    selection.clear()
    messages.clear()
    executed.clear()
    ProgressTask.instances.clear()
    ProgressTask.cancel_when = staticmethod(lambda task: False)


def _module() -> Any:
    import sys

    return sys.modules[__name__]


nodes = _Nodes()
_lock = threading.Lock()
_main_queue: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
_menus: dict[str, _Menu] = {}
_context: list[Group] = []
selection: list[Node] = []
messages: list[str] = []
executed: list[tuple[str, int]] = []
this_node: list[Node] = []
_root: Root
reset()

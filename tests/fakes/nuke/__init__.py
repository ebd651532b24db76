"""A working stand-in for the parts of Nuke's Python API the RRTN adapter uses (Nuke 15-16).

Nuke cannot run here, so this fake does the real work its documented API promises, including
the behaviours that break naive adapters (each one cited where it is modelled):

- Images have a *format* (the frame, ``node.format()``, ``node.width()``) and a *bounding
  box* (the pixels that exist, ``node.bbox()``), in Nuke's coordinates (origin bottom left,
  y up). They differ after overscan, a Transform or a Crop (Nuke User Guide, "Adjusting the
  Bounding Box": the bbox is the area Nuke sees as holding image data, and Transforms and
  Merges change it). A Read takes the EXR display window as its format and the data window
  as its bbox; ``nuke.execute`` on a Write writes the bbox as the EXR data window and the
  format as the display window (what Nuke's EXR writer does; nuke-ML-server clips to the
  format for the same reason).
- A Group has input pipes only once it holds Input nodes: ``setInput`` before that connects
  nothing and returns False (Nuke Python API, ``Node.setInput``: "returns True if
  successful"; a Group's inputs are its Input nodes).
- ``writeKnobs(WRITE_ALL)`` writes every knob, ``xpos``/``ypos`` included, and writes an
  expression as its text (``{{Controls.gain}}``), not its value; a Group's knobs say nothing
  of the nodes inside it. ``knob.value()`` evaluates the expression, and
  ``dependencies(EXPRESSIONS)`` names the nodes it reads (Nuke Python API, Node.dependencies:
  "what: Or'ed constant of nuke.EXPRESSIONS, nuke.INPUTS and nuke.HIDDEN_INPUTS").
- File knobs hold TCL (``[file dirname [value root.name]]/…``), evaluated when read
  (``knob.evaluate()``, ``nuke.filename``), so a saved script's paths can be relative to it.
- Colour: the root's ``colorManagement``, ``OCIO_config``, ``customOCIOConfigPath`` and
  ``workingSpaceLUT`` knobs as in a Nuke 15 script; the working space is the
  ``scene_linear`` role by default (a role name, not a colour space); built-in configs live
  under ``<install>/plugins/OCIOConfigs/configs`` beside ``nuke.EXE_PATH`` (Nuke's own
  layout, e.g. ``Nuke16.0v6/plugins/OCIOConfigs/configs/nuke-default/config.ocio``).
- ``nuke.Undo`` groups changes into one undo step; without it every creation and connection
  is a step of its own (:data:`undo_steps` records them).

Also: ``channels()`` names EXR channels as Nuke does (R, G, B, A → ``rgba.red`` …,
``rrtn_mask.Y`` kept); ``executeInMainThread`` queues calls for the main loop
(:func:`run_main_loop`); ``ProgressTask`` records progress and can be cancelled by a test;
``addUpdateUI`` callbacks run through :func:`update_ui`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import OpenImageIO as oiio

STARTLINE, INVISIBLE = 0x1000, 0x400
INPUTS, HIDDEN_INPUTS, EXPRESSIONS = 0x1, 0x2, 0x4
WRITE_ALL, TO_SCRIPT, WRITE_NON_DEFAULT_ONLY = 0x8, 0x1, 0x10
NUKE_CHANNELS = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}
EXE_PATH = "/usr/local/Nuke16.0v6/Nuke16.0"
"""Where Nuke runs from; tests point it at a folder holding ``plugins/OCIOConfigs``."""
NUKE_VERSION_MAJOR = 16


# -- images -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A bbox in Nuke's coordinates: x, y (bottom left, inclusive), r, t (exclusive)."""

    x: int
    y: int
    r: int
    t: int

    def intersect(self, other: Box) -> Box:
        x, y = max(self.x, other.x), max(self.y, other.y)
        return Box(x, y, max(x, min(self.r, other.r)), max(y, min(self.t, other.t)))


@dataclass
class Plane:
    """What a node gives for a frame: channel names, pixels over ``bbox`` (rows top first)."""

    channels: list[str]
    pixels: np.ndarray
    bbox: Box

    def placed(self, box: Box) -> np.ndarray:
        """The pixels over ``box``: black where this plane has none."""
        out = np.zeros((box.t - box.y, box.r - box.x, self.pixels.shape[2]), np.float32)
        both = self.bbox.intersect(box)
        if both.r > both.x and both.t > both.y:
            src = self.pixels[
                self.bbox.t - both.t : self.bbox.t - both.y,
                both.x - self.bbox.x : both.r - self.bbox.x,
            ]
            out[box.t - both.t : box.t - both.y, both.x - box.x : both.r - box.x] = src
        return out


class Format:
    def __init__(self, width: int, height: int) -> None:
        self._w, self._h = width, height

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h

    def x(self) -> int:
        return 0

    def y(self) -> int:
        return 0

    def r(self) -> int:
        return self._w

    def t(self) -> int:
        return self._h


class Info:
    """``node.bbox()``: x, y, w, h."""

    def __init__(self, box: Box) -> None:
        self.box = box

    def x(self) -> int:
        return self.box.x

    def y(self) -> int:
        return self.box.y

    def w(self) -> int:
        return self.box.r - self.box.x

    def h(self) -> int:
        return self.box.t - self.box.y


# -- knobs ------------------------------------------------------------------------------------


class Knob:
    def __init__(self, name: str, label: str = "", value: Any = None) -> None:
        self._name, self._label, self._value, self.flags = name, label, value, 0
        self._expression: str | None = None
        self._node: Node | None = None
        self._tooltip = ""

    def name(self) -> str:
        return self._name

    def label(self) -> str:
        return self._label

    def node(self) -> Node:
        assert self._node is not None
        return self._node

    def value(self) -> Any:
        if self._expression is not None:
            return _evaluate_expression(self._expression, self._node)
        return self._value

    def getValue(self) -> Any:
        return self.value()

    def getValueAt(self, frame: float, index: int = 0, view: str | None = None) -> Any:
        return self.value()  # the fake's expressions do not depend on the frame

    def setValue(self, value: Any) -> bool:
        self._expression = None
        self._value = value
        return True

    def setExpression(self, expression: str, index: int = -1, view: str | None = None) -> bool:
        """Link this knob to ``Node.knob`` (optionally ``* number`` or ``+ number``)."""
        self._expression = expression
        return True

    def hasExpression(self, index: int = -1) -> bool:
        return self._expression is not None

    def isAnimated(self, index: int = -1) -> bool:
        return self._expression is not None

    def toScript(self, quote: bool = False, context: Any = None) -> str:
        if self._expression is not None:
            return "{{" + self._expression + "}}"
        return repr(self._value)

    def setFlag(self, flag: int) -> None:
        self.flags |= flag

    def clearFlag(self, flag: int) -> None:
        self.flags &= ~flag

    def setVisible(self, visible: bool) -> None:
        self.flags = self.flags & ~INVISIBLE if visible else self.flags | INVISIBLE

    def visible(self) -> bool:
        return not self.flags & INVISIBLE

    def setTooltip(self, tooltip: str) -> None:
        """Shown when the pointer rests on the knob (Nuke Python API, Knob.setTooltip)."""
        self._tooltip = tooltip

    def tooltip(self) -> str:
        return self._tooltip

    def Class(self) -> str:
        return type(self).__name__


class Tab_Knob(Knob):
    pass


class String_Knob(Knob):
    def __init__(self, name: str, label: str = "", value: str = "") -> None:
        super().__init__(name, label, value)

    def evaluate(self) -> str:
        """The value with its TCL evaluated, as Nuke's EvalString_Knob.evaluate does."""
        return tcl_substitute(str(self.value()))


class EvalString_Knob(String_Knob):
    pass


class File_Knob(EvalString_Knob):
    pass


class Text_Knob(String_Knob):
    pass


class Int_Knob(Knob):
    def __init__(self, name: str, label: str = "") -> None:
        super().__init__(name, label, 0)

    def setValue(self, value: Any) -> bool:
        return super().setValue(int(value))


class Double_Knob(Knob):
    """A number with a slider. ``setRange`` sets the slider's range only (Nuke Python API,
    Array_Knob.setRange; NDK guide, "Knob Flags, Ranges, and Tooltips": numeric knobs default
    to a 0-1 range): a value typed into the field may lie outside it, so it is not clamped."""

    def __init__(self, name: str, label: str = "", value: float = 0.0) -> None:
        super().__init__(name, label, float(value))
        self.range = (0.0, 1.0)

    def setValue(self, value: Any) -> bool:
        return super().setValue(float(value))

    def setRange(self, minimum: float, maximum: float) -> None:
        self.range = (float(minimum), float(maximum))

    def min(self) -> float:
        return self.range[0]

    def max(self) -> float:
        return self.range[1]


class Boolean_Knob(Knob):
    def __init__(self, name: str, label: str = "", value: bool = False) -> None:
        super().__init__(name, label, bool(value))

    def setValue(self, value: Any) -> bool:
        return super().setValue(bool(value))  # a checkbox holds True or False


class Enumeration_Knob(Knob):
    def __init__(self, name: str, label: str, values: list[str]) -> None:
        super().__init__(name, label, values[0] if values else "")
        self.items = list(values)

    def setValues(self, values: list[str]) -> None:
        self.items = list(values)
        if self._value not in self.items:
            self._value = self.items[0] if self.items else ""

    def values(self) -> list[str]:
        return list(self.items)

    def setValue(self, value: Any) -> bool:
        if value not in self.items:
            raise ValueError(f"{value!r} is not one of {self.items}")
        return super().setValue(value)


class PyScript_Knob(Knob):
    def __init__(self, name: str, label: str = "", command: str = "") -> None:
        super().__init__(name, label, command)

    def execute(self) -> None:
        exec(self._value, {"nuke": _module(), "__builtins__": __builtins__})


# -- nodes ------------------------------------------------------------------------------------


class Node:
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, parent: Group | None, name: str, **knobs: Any) -> None:
        self._knobs: dict[str, Knob] = {}
        for key, value in {
            "name": name,
            "disable": False,
            "xpos": 0,
            "ypos": 0,
            "selected": False,
            "label": "",
            **self.DEFAULTS,
        }.items():
            self.addKnob(Knob(key, "", value))
        for key, value in knobs.items():
            if key not in self._knobs:
                self.addKnob(Knob(key))
            self._knobs[key].setValue(value)
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

    def parent(self) -> Group | None:
        return self._parent

    def addKnob(self, knob: Knob) -> None:
        knob._node = self
        self._knobs[knob.name()] = knob

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def __getitem__(self, name: str) -> Knob:
        return self._knobs[name]

    def xpos(self) -> int:
        return int(self["xpos"].value())

    def ypos(self) -> int:
        return int(self["ypos"].value())

    def setXYpos(self, x: int, y: int) -> None:
        self["xpos"].setValue(int(x))
        self["ypos"].setValue(int(y))

    def setSelected(self, selected: bool) -> None:
        self["selected"].setValue(bool(selected))
        if selected and self not in selection:
            selection.append(self)
        if not selected and self in selection:
            selection.remove(self)

    def isSelected(self) -> bool:
        return bool(self["selected"].value())

    def showControlPanel(self, forceFloat: bool = False) -> None:
        shown_panels.append(self)

    def maxInputs(self) -> int:
        return 1

    def input(self, index: int) -> Node | None:
        return self._inputs[index] if index < len(self._inputs) else None

    def inputs(self) -> int:
        return len(self._inputs)

    def setInput(self, index: int, node: Node | None) -> bool:
        if index >= self.maxInputs():
            return False
        self._inputs += [None] * (index + 1 - len(self._inputs))
        self._inputs[index] = node
        _record_undo(f"connect {self.name()}")
        return True

    def dependencies(self, mask: int = INPUTS | HIDDEN_INPUTS | EXPRESSIONS) -> list[Node]:
        found = [n for n in self._inputs if n is not None] if mask & INPUTS else []
        if mask & EXPRESSIONS:
            for knob in self._knobs.values():
                if knob._expression is not None:
                    node = _expression_node(knob._expression, self)
                    if node is not None and node not in found:
                        found.append(node)
        return found

    def writeKnobs(self, flags: int = 0) -> str:
        return " ".join(
            f"{k} {v.toScript()}"
            for k, v in sorted(self._knobs.items())
            if not isinstance(v, Text_Knob)
        )

    def _upstream(self) -> Node:
        node = self.input(0)
        if node is None:
            raise RuntimeError(f"{self.name()}: no input")
        return node

    # What flows through: frame range, format, bbox, channels and pixels.
    def firstFrame(self) -> int:
        return self._upstream().firstFrame()

    def lastFrame(self) -> int:
        return self._upstream().lastFrame()

    def format(self) -> Format:
        return self._upstream().format()

    def width(self) -> int:
        return self.format().width()

    def height(self) -> int:
        return self.format().height()

    def bbox(self) -> Info:
        return Info(self.render(self.firstFrame()).bbox)

    def channels(self) -> list[str]:
        return self._upstream().channels()

    def render(self, frame: int) -> Plane:
        return self._upstream().render(frame)


class NoOp(Node):
    """Passes its input through; holds user knobs (a "Controls" node for expressions)."""


class Read(Node):
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "first": 1,
        "last": 1,
        "origfirst": 1,
        "origlast": 1,
        "raw": False,
        "before": "hold",
        "after": "hold",
        "on_error": "error",
    }

    def __init__(self, parent: Group | None, name: str, **knobs: Any) -> None:
        super().__init__(parent, name)
        self.addKnob(File_Knob("file", "file"))
        for key, value in knobs.items():
            if key not in self._knobs:
                self.addKnob(Knob(key))
            self._knobs[key].setValue(value)

    def maxInputs(self) -> int:
        return 0

    def firstFrame(self) -> int:
        return int(self["first"].value())

    def lastFrame(self) -> int:
        return int(self["last"].value())

    def path(self, frame: int) -> Path:
        return frame_file(filename(self) or "", frame)

    def _spec(self) -> oiio.ImageSpec:
        path = self.path(self.firstFrame())
        image = oiio.ImageInput.open(str(path))
        if image is None:
            raise RuntimeError(f"{self.name()}: cannot open {path}")
        spec = image.spec()
        image.close()
        return spec

    def format(self) -> Format:
        spec = self._spec()
        return Format(spec.full_width, spec.full_height)  # the EXR display window

    def channels(self) -> list[str]:
        return [nuke_channel(c) for c in self._spec().channelnames]

    def render(self, frame: int) -> Plane:
        first, last = self.firstFrame(), self.lastFrame()
        outside = (frame < first and self["before"].value() == "black") or (
            frame > last and self["after"].value() == "black"
        )
        spec = self._spec()
        box = _exr_to_box(spec)
        if outside:
            return Plane(
                self.channels(), np.zeros((box.t - box.y, box.r - box.x, spec.nchannels)), box
            )
        path = self.path(min(max(frame, first), last))
        image = oiio.ImageInput.open(str(path))
        if image is None:
            raise RuntimeError(f"{self.name()}: cannot open {path}")
        frame_spec = image.spec()
        pixels = image.read_image(format="float")
        image.close()
        names = [nuke_channel(c) for c in frame_spec.channelnames]
        return Plane(names, np.asarray(pixels, np.float32), _exr_to_box(frame_spec))


class Transform(Node):
    """Moves the image by ``translate`` (whole pixels here): the bbox moves, the format not."""

    DEFAULTS: ClassVar[dict[str, Any]] = {"translate": (0, 0)}

    def render(self, frame: int) -> Plane:
        plane = self._upstream().render(frame)
        tx, ty = (int(v) for v in self["translate"].value())
        b = plane.bbox
        return Plane(plane.channels, plane.pixels, Box(b.x + tx, b.y + ty, b.r + tx, b.t + ty))


class Multiply(Node):
    """rgb × ``value`` (a knob that may be linked by an expression)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {"value": 1.0}

    def render(self, frame: int) -> Plane:
        plane = self._upstream().render(frame)
        pixels = plane.pixels.copy()
        pixels[:, :, :3] *= float(self["value"].value())
        return Plane(plane.channels, pixels, plane.bbox)


class Crop(Node):
    """Nuke's Crop: ``box`` (x, y, r, t); outside it black (``crop``). With ``intersect`` off
    the bbox becomes the box, larger than the input's where it reaches further; with
    ``reformat`` the format would become the box (not modelled: the adapter never asks)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "box": (0, 0, 0, 0),
        "reformat": False,
        "intersect": False,
        "crop": True,
    }

    def render(self, frame: int) -> Plane:
        if self["reformat"].value():
            raise RuntimeError("the fake Crop does not reformat")
        plane = self._upstream().render(frame)
        box = Box(*(int(v) for v in self["box"].value()))
        if self["intersect"].value():
            box = box.intersect(plane.bbox)
        return Plane(plane.channels, plane.placed(box), box)


class Write(Node):
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "file_type": "",
        "raw": False,
        "datatype": "16 bit half",
        "compression": "Zip (1 scanline)",
        "channels": "rgb",
        "create_directories": False,
    }

    def __init__(self, parent: Group | None, name: str, **knobs: Any) -> None:
        super().__init__(parent, name)
        self.addKnob(File_Knob("file", "file"))
        for key, value in knobs.items():
            if key not in self._knobs:
                self.addKnob(Knob(key))
            self._knobs[key].setValue(value)


class Input(Node):
    def maxInputs(self) -> int:
        return 0

    def index(self) -> int:
        assert self._parent is not None
        return [n for n in self._parent._children if isinstance(n, Input)].index(self)

    def _upstream(self) -> Node:
        assert self._parent is not None
        node = self._parent.input(self.index())
        if node is None:
            raise RuntimeError(f"{self._parent.name()}: input not connected")
        return node


class Output(Node):
    pass


class Group(Node):
    def __init__(self, parent: Group | None, name: str, **knobs: Any) -> None:
        self._children: list[Node] = []
        super().__init__(parent, name, **knobs)

    def maxInputs(self) -> int:
        """A Group's input pipes are its Input nodes: none until it holds one."""
        return sum(isinstance(n, Input) for n in self._children)

    def node(self, name: str) -> Node | None:
        return next((n for n in self._children if n.name() == name), None)

    def nodes(self) -> list[Node]:
        return list(self._children)

    def begin(self) -> Group:
        _context.append(self)
        return self

    def end(self) -> None:
        _context.pop()

    def __enter__(self) -> Group:
        return self.begin()

    def __exit__(self, *exc: object) -> None:
        self.end()

    def writeKnobs(self, flags: int = 0) -> str:
        return super().writeKnobs(flags)  # the Group's own knobs only, not its nodes'

    def _upstream(self) -> Node:
        output = next((n for n in self._children if isinstance(n, Output)), None)
        if output is None:
            raise RuntimeError(f"{self.name()}: no Output node")
        return output


class Root(Group):
    def name(self) -> str:
        return "root"


class _Nodes:
    """``nuke.nodes.Read(...)``: a node made in the current group, knobs set, not connected."""

    KINDS: ClassVar[dict[str, type[Node]]] = {
        "Read": Read,
        "Write": Write,
        "Input": Input,
        "Output": Output,
        "Group": Group,
        "Crop": Crop,
        "Transform": Transform,
        "Multiply": Multiply,
        "NoOp": NoOp,
    }

    def __getattr__(self, cls: str) -> Callable[..., Node]:
        def make(**knobs: Any) -> Node:
            parent = _context[-1]
            name = knobs.pop("name", cls)
            taken = {n.name() for n in parent.nodes()}
            unique, count = name, 1
            while unique in taken:
                unique, count = f"{name}{count}", count + 1
            node = self.KINDS[cls](parent, unique, **knobs)
            _record_undo(f"create {unique}")
            return node

        return make


class Undo:
    """``nuke.Undo``: what happens between begin and end is one undo step."""

    def begin(self, name: str = "") -> None:
        global _undo_depth, _undo_name
        if _undo_depth == 0:
            _undo_name = name
        _undo_depth += 1

    def end(self) -> None:
        global _undo_depth
        _undo_depth -= 1
        if _undo_depth == 0:
            undo_steps.append(_undo_name or "grouped")


def _record_undo(name: str) -> None:
    if _undo_depth == 0:
        undo_steps.append(name)


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


# -- expressions and TCL ----------------------------------------------------------------------


def _expression_node(expression: str, node: Node | None) -> Node | None:
    match = re.match(r"\s*(parent\.)?([A-Za-z_]\w*)\.", expression)
    if match is None:
        return None
    if match.group(1) and node is not None:
        return node._parent
    return toNode(match.group(2))


def _evaluate_expression(expression: str, node: Node | None) -> Any:
    """``Name.knob``, ``parent.knob`` or ``Name.knob * 2`` / ``+ 1``: the linked value."""
    match = re.fullmatch(
        r"\s*(parent|[A-Za-z_]\w*)\.(\w+)\s*(?:([*+])\s*([-\d.]+))?\s*", expression
    )
    if match is None:
        raise ValueError(f"the fake evaluates Node.knob [* or + number] only, not {expression!r}")
    target = node._parent if match.group(1) == "parent" and node else toNode(match.group(1))
    if target is None:
        raise RuntimeError(f"expression {expression!r}: no node {match.group(1)}")
    value = target[match.group(2)].value()
    if match.group(3) == "*":
        value = value * float(match.group(4))
    elif match.group(3) == "+":
        value = value + float(match.group(4))
    return value


def tcl_substitute(text: str) -> str:
    """Evaluate the TCL a file knob may hold: ``[value root.name]``, ``[getenv NAME]``,
    ``[file dirname X]`` (innermost first, as TCL does)."""
    pattern = re.compile(r"\[([^\[\]]*)\]")
    while (match := pattern.search(text)) is not None:
        words = match.group(1).split(None, 1)
        command, argument = words[0], words[1] if len(words) > 1 else ""
        if command == "value":
            node_name, _, knob_name = argument.rpartition(".")
            node = _root if node_name == "root" else toNode(node_name)
            result = "" if node is None else str(node[knob_name].value())
        elif command == "getenv":
            result = os.environ.get(argument, "")
        elif command == "file" and argument.startswith("dirname "):
            result = os.path.dirname(argument.split(None, 1)[1])
        else:
            raise ValueError(f"the fake TCL does not know [{match.group(1)}]")
        text = text[: match.start()] + result + text[match.end() :]
    return text


# -- module functions -------------------------------------------------------------------------


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


def _exr_to_box(spec: oiio.ImageSpec) -> Box:
    """An EXR's data window (y down from the display window's top) as a Nuke bbox (y up)."""
    height = spec.full_height
    return Box(spec.x, height - (spec.y + spec.height), spec.x + spec.width, height - spec.y)


def filename(node: Node, i: int = 0) -> str | None:
    """The node's file path with its TCL evaluated (``####`` kept)."""
    knob = node.knob("file")
    return None if knob is None else tcl_substitute(str(knob.value()))


def execute(node: Node, start: int, end: int, incr: int = 1) -> None:
    """Render a Write's input for frames start..end to its files (blocking, like Nuke): the
    bbox is the EXR data window, the format the display window."""
    if not isinstance(node, Write):
        raise RuntimeError(f"{node.name()} cannot be executed")
    if node["disable"].value():
        raise RuntimeError(f"{node.name()} is disabled")
    if node["file_type"].value() != "exr" or not node["raw"].value():
        raise RuntimeError("this fake renders raw EXR only")
    formats = {"32 bit float": "float", "16 bit half": "half"}
    fmt = node.format()
    for frame in range(start, end + 1, incr):
        plane = node.render(frame)
        keep = [i for i, n in enumerate(plane.channels) if n.startswith("rgba.")]
        if node["channels"].value() == "rgb":
            keep = keep[:3]
        box = plane.bbox
        spec = oiio.ImageSpec(
            box.r - box.x, box.t - box.y, len(keep), formats[node["datatype"].value()]
        )
        spec.x, spec.y = box.x, fmt.height() - box.t
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = (
            0,
            0,
            fmt.width(),
            fmt.height(),
        )
        spec.channelnames = [plane.channels[i].split(".")[1][0].upper() for i in keep]
        spec.attribute("compression", "zip")
        target = frame_file(filename(node) or "", frame)
        if not target.parent.is_dir():
            if not node["create_directories"].value():
                raise RuntimeError(f"{node.name()}: can't write {target}: no such directory")
            target.parent.mkdir(parents=True)
        out = oiio.ImageOutput.create(str(target))
        out.open(str(target), spec)
        out.write_image(np.ascontiguousarray(plane.pixels[:, :, keep], np.float32))
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


def addUpdateUI(
    call: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    nodeClass: str = "*",
) -> None:
    update_ui_callbacks.append((call, args, kwargs or {}, nodeClass))


def update_ui(node: Node) -> None:
    """Test helper: Nuke refreshing ``node``'s UI runs the updateUI callbacks for its class."""
    this_node.append(node)
    try:
        for call, args, kwargs, node_class in update_ui_callbacks:
            if node_class in ("*", node.Class()):
                call(*args, **kwargs)
    finally:
        this_node.pop()


def toNode(name: str) -> Node | None:
    if name == "root":
        return _root
    group: Group = _root
    node: Node | None = None
    for part in name.split("."):
        node = group.node(part)
        if node is None:
            return None
        if isinstance(node, Group):
            group = node
    return node


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
    """Test helper: a new, empty, unsaved script (root ``name`` empty)."""
    global _root, _undo_depth
    _root = Root(
        None,
        "root",
        proxy=False,
        first_frame=1,
        last_frame=100,
        colorManagement="Nuke",
        OCIO_config="nuke-default",
        customOCIOConfigPath="",
        workingSpaceLUT="scene_linear",
    )
    _root["name"].setValue("")
    _context[:] = [_root]
    _undo_depth = 0
    for registry in (selection, messages, executed, undo_steps, shown_panels):
        registry.clear()
    update_ui_callbacks.clear()
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
undo_steps: list[str] = []
shown_panels: list[Node] = []
update_ui_callbacks: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], str]] = []
this_node: list[Node] = []
_undo_depth = 0
_undo_name = ""
_root: Root
reset()

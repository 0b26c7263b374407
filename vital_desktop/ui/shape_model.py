"""The shapes of one item's geometry label (boxes, polygons or points), edited on the canvas.

One `ShapeModel` per label form is the single truth the canvas paints, the shape list shows
and the label data is read from. Every edit is one undoable step (a snapshot of the shapes and
of the polygon being drawn, so undo is exact); a drag is one step from press to release.
Coordinates are image pixels, origin top-left, x right, y down (the shared label-data shapes);
edits are clamped to the image, and `check_shapes` validates the result again before a save.

The classes and their colours come from the label type (`class_specs`); a class without a
colour gets one from a generic palette by its position, never from a table of class names.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from vital_desktop.services.label_types import PALETTE

GEOMETRY_KINDS = ("boxes", "polygons", "points")


#: keys that pick a class without a shortcut of its own: 1–9 then 0 for the tenth
DIGIT_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0")


@dataclass(frozen=True)
class ClassSpec:
    """One class as the tool shows it: name (stored), title (shown), colour and key."""

    name: str
    title: str
    color: str
    shortcut: str = ""


def geometry_kind(label_type: Any) -> str | None:
    """'boxes', 'polygons' or 'points' when the label type is a geometry type, else None."""
    kind = getattr(label_type, "kind", None)
    if kind in GEOMETRY_KINDS:
        return kind
    if kind:  # a declared non-geometry kind
        return None
    properties = (getattr(label_type, "schema", None) or {}).get("properties", {})
    for name in GEOMETRY_KINDS:
        spec = properties.get(name, {})
        if spec.get("type") == "array" and spec.get("items", {}).get("type") == "object":
            return name
    return None


def schema_classes(label_type: Any) -> list[str]:
    """Class names from the schema: the geometry items' label enum or the class field's enum."""
    properties = (getattr(label_type, "schema", None) or {}).get("properties", {})
    kind = geometry_kind(label_type)
    if kind is not None:
        return [str(v) for v in properties.get(kind, {}).get("items", {}).get("properties", {})
                .get("label", {}).get("enum", [])]
    class_field = getattr(label_type, "class_field", None)
    if class_field:
        return [str(v) for v in properties.get(class_field, {}).get("enum", [])]
    return []


def class_specs(label_type: Any, names: Iterable[str] | None = None) -> list[ClassSpec]:
    """The classes to offer, in order, with titles, colours and keys from the label type.

    `names` (the values the schema accepts) wins for membership and order when given, so a
    deprecated class the schema refuses is not offered.
    """
    declared = {c.name: c for c in getattr(label_type, "class_list", ()) if not c.deprecated}
    colors = label_type.colors() if hasattr(label_type, "colors") else {}
    ordered = [str(n) for n in names] if names is not None else (list(declared) or schema_classes(label_type))
    specs = []
    for i, name in enumerate(ordered):
        source = declared.get(name)
        title = (source.title if source is not None else "") or name.replace("_", " ")
        color = (source.color if source is not None else "") or colors.get(name) or PALETTE[i % len(PALETTE)]
        specs.append(ClassSpec(name, title, color, source.shortcut if source is not None else ""))
    return specs


def class_index_for_key(classes: list[ClassSpec], key: str) -> int | None:
    """The class a key picks: a class's own shortcut first, else digits by position (1–9, 0)."""
    key = key.lower()
    for i, spec in enumerate(classes):
        if spec.shortcut and spec.shortcut.lower() == key:
            return i
    if key in DIGIT_KEYS:  # not claimed by any class: the digit picks by position
        index = DIGIT_KEYS.index(key)
        return index if index < len(classes) else None
    return None


def key_of(classes: list[ClassSpec], index: int) -> str:
    """The key shown beside a class ('' when it has none)."""
    spec = classes[index]
    if spec.shortcut:
        return spec.shortcut
    return DIGIT_KEYS[index] if index < len(DIGIT_KEYS) else ""


# --- geometry helpers (image pixels) ---------------------------------------------------------------


def vertices(kind: str, shape: dict) -> list[tuple[float, float]]:
    """A shape's handles: box corners (clockwise from top-left), polygon vertices, the point."""
    if kind == "boxes":
        x, y, w, h = shape["x"], shape["y"], shape["width"], shape["height"]
        return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    if kind == "polygons":
        return [(float(p[0]), float(p[1])) for p in shape["points"]]
    return [(shape["x"], shape["y"])]


def contains(kind: str, shape: dict, x: float, y: float) -> bool:
    """Whether (x, y) is inside a box or a polygon (even-odd rule); points have no inside."""
    if kind == "boxes":
        return shape["x"] <= x <= shape["x"] + shape["width"] and shape["y"] <= y <= shape["y"] + shape["height"]
    if kind == "polygons":
        points = shape["points"]
        inside = False
        j = len(points) - 1
        for i in range(len(points)):
            xi, yi = points[i]
            xj, yj = points[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / ((yj - yi) or 1e-12) + xi:
                inside = not inside
            j = i
        return inside
    return False


@dataclass(frozen=True)
class Hit:
    """What a press landed on: a shape's vertex (`vertex` set) or its inside."""

    shape: int
    vertex: int | None = None


Snapshot = tuple[list[dict], list[list[float]] | None]


class _SnapshotCommand(QUndoCommand):
    def __init__(self, model: ShapeModel, before: Snapshot, after: Snapshot, text: str) -> None:
        super().__init__(text)
        self.model, self.before, self.after = model, before, after

    def redo(self) -> None:
        self.model._restore(self.after)

    def undo(self) -> None:
        self.model._restore(self.before)


class ShapeModel(QObject):
    """The editable shapes of one geometry label, with selection, drawing state and undo."""

    changed = Signal()

    def __init__(self, kind: str, classes: list[ClassSpec], parent: QObject | None = None) -> None:
        super().__init__(parent)
        if kind not in GEOMETRY_KINDS:
            raise ValueError(f"not a geometry kind: {kind!r}")
        self.kind = kind
        self.classes = classes
        self.shapes: list[dict] = []
        self.drawing: list[list[float]] | None = None  # the open polygon's vertices
        self.selected: int | None = None
        self.selected_vertex: int | None = None
        self.current_class = 0
        self.bounds: tuple[float, float] | None = None  # image width, height
        self.undo_stack = QUndoStack(self)
        self._drag_before: Snapshot | None = None

    # --- state -----------------------------------------------------------------------------------
    def set_shapes(self, shapes: list[dict] | None) -> None:
        """Load a stored label's shapes: a fresh start (no undo history, nothing selected)."""
        self.shapes = copy.deepcopy(list(shapes or []))
        self.drawing = None
        self.selected = self.selected_vertex = None
        self.undo_stack.clear()
        self.changed.emit()

    def value(self) -> list[dict]:
        return copy.deepcopy(self.shapes)

    def class_of(self, shape: dict) -> ClassSpec | None:
        return next((c for c in self.classes if c.name == shape.get("label")), None)

    def color_of(self, shape: dict) -> str:
        spec = self.class_of(shape)
        return spec.color if spec is not None else "#9aa5b1"

    @property
    def current_label(self) -> str:
        return self.classes[self.current_class].name if 0 <= self.current_class < len(self.classes) else ""

    def _snapshot(self) -> Snapshot:
        return copy.deepcopy(self.shapes), copy.deepcopy(self.drawing)

    def _restore(self, state: Snapshot) -> None:
        self.shapes, self.drawing = copy.deepcopy(state[0]), copy.deepcopy(state[1])
        if self.selected is not None and self.selected >= len(self.shapes):
            self.selected = self.selected_vertex = None
        self.changed.emit()

    def _edit(self, text: str, change) -> None:
        before = self._snapshot()
        change()
        after = self._snapshot()
        if after != before:
            self.undo_stack.push(_SnapshotCommand(self, before, after, text))
        self.changed.emit()

    def clamp(self, x: float, y: float) -> tuple[float, float]:
        """A point pulled inside the image (edits never leave it)."""
        if self.bounds is None:
            return float(x), float(y)
        width, height = self.bounds
        return round(min(max(float(x), 0.0), width), 2), round(min(max(float(y), 0.0), height), 2)

    # --- selection and classes ----------------------------------------------------------------------
    def select(self, shape: int | None, vertex: int | None = None) -> None:
        self.selected = shape if shape is not None and 0 <= shape < len(self.shapes) else None
        self.selected_vertex = vertex if self.selected is not None else None
        self.changed.emit()

    def pick_class(self, index: int) -> bool:
        """Choose the class of the next shape; a selected shape takes it too (one undo step)."""
        if not 0 <= index < len(self.classes):
            return False
        self.current_class = index
        label = self.classes[index].name
        if self.selected is not None and self.shapes[self.selected].get("label") != label:
            shape = self.selected

            def relabel() -> None:
                self.shapes[shape]["label"] = label

            self._edit(f"class {label}", relabel)
        else:
            self.changed.emit()
        return True

    # --- creating ---------------------------------------------------------------------------------------
    def add_box(self, x: float, y: float, width: float, height: float) -> None:
        x0, y0 = self.clamp(x, y)
        x1, y1 = self.clamp(x + width, y + height)
        box: dict[str, Any] = {"label": self.current_label, "x": min(x0, x1), "y": min(y0, y1),
               "width": round(abs(x1 - x0), 2), "height": round(abs(y1 - y0), 2)}
        if box["width"] <= 0 or box["height"] <= 0:
            return
        self._edit("add box", lambda: self.shapes.append(box))
        self.select(len(self.shapes) - 1)

    def add_point(self, x: float, y: float) -> None:
        px, py = self.clamp(x, y)
        self._edit("add point", lambda: self.shapes.append({"label": self.current_label, "x": px, "y": py}))
        self.select(len(self.shapes) - 1)

    def add_vertex(self, x: float, y: float) -> None:
        """Polygons: the click adds a vertex to the open polygon (starting one if none is open)."""
        px, py = self.clamp(x, y)

        def add() -> None:
            if self.drawing is None:
                self.drawing = []
            self.drawing.append([px, py])

        self._edit("add vertex", add)

    def close_polygon(self) -> bool:
        """Enter: close the open polygon into a shape (needs three vertices); True if closed."""
        if self.drawing is None or len(self.drawing) < 3:
            return False
        points = self.drawing

        def close() -> None:
            self.shapes.append({"label": self.current_label, "points": points})
            self.drawing = None

        self._edit("close polygon", close)
        self.select(len(self.shapes) - 1)
        return True

    def cancel_drawing(self) -> bool:
        """Escape: drop the open polygon (undoable); True if there was one."""
        if self.drawing is None:
            return False

        def cancel() -> None:
            self.drawing = None

        self._edit("cancel polygon", cancel)
        return True

    # --- deleting -----------------------------------------------------------------------------------------
    def delete(self) -> bool:
        """Backspace: the open polygon's last vertex, else the selected vertex (a polygon keeps
        three), else the selected shape. True if something went."""
        if self.drawing:
            def drop_last() -> None:
                assert self.drawing is not None
                self.drawing.pop()
                if not self.drawing:
                    self.drawing = None

            self._edit("delete vertex", drop_last)
            return True
        if self.selected is None:
            return False
        shape, vertex = self.selected, self.selected_vertex
        if self.kind == "polygons" and vertex is not None and len(self.shapes[shape]["points"]) > 3:
            def drop_vertex() -> None:
                del self.shapes[shape]["points"][vertex]

            self._edit("delete vertex", drop_vertex)
            self.selected_vertex = None
            self.changed.emit()
            return True

        def drop_shape() -> None:
            del self.shapes[shape]

        self._edit(f"delete {self.kind[:-1] if self.kind != 'boxes' else 'box'}", drop_shape)
        self.select(None)
        return True

    # --- dragging -------------------------------------------------------------------------------------------
    def begin_drag(self) -> None:
        self._drag_before = self._snapshot()

    def end_drag(self, text: str = "move") -> None:
        """One undo step for the whole drag (nothing when nothing moved)."""
        before, self._drag_before = self._drag_before, None
        if before is not None and self._snapshot() != before:
            self.undo_stack.push(_SnapshotCommand(self, before, self._snapshot(), text))
        self.changed.emit()

    def move_vertex(self, shape: int, vertex: int, x: float, y: float) -> None:
        """Drag a handle: a polygon vertex, a point, or a box corner (the opposite corner stays)."""
        px, py = self.clamp(x, y)
        item = self.shapes[shape]
        if self.kind == "polygons":
            item["points"][vertex] = [px, py]
        elif self.kind == "points":
            item["x"], item["y"] = px, py
        else:
            corners = vertices("boxes", item)
            ox, oy = corners[(vertex + 2) % 4]
            width, height = abs(px - ox), abs(py - oy)
            if width > 0 and height > 0:
                item.update(x=min(px, ox), y=min(py, oy), width=round(width, 2), height=round(height, 2))
        self.changed.emit()

    def move_shape(self, shape: int, origin: list[dict], dx: float, dy: float) -> None:
        """Drag a whole shape by (dx, dy) from its state at the press, kept inside the image."""
        start = origin[shape]
        points = vertices(self.kind, start)
        if self.bounds is not None:
            width, height = self.bounds
            dx = min(max(dx, -min(p[0] for p in points)), width - max(p[0] for p in points))
            dy = min(max(dy, -min(p[1] for p in points)), height - max(p[1] for p in points))
        item = copy.deepcopy(start)
        if self.kind == "polygons":
            item["points"] = [[round(p[0] + dx, 2), round(p[1] + dy, 2)] for p in start["points"]]
        else:
            item["x"], item["y"] = round(start["x"] + dx, 2), round(start["y"] + dy, 2)
        self.shapes[shape] = item
        self.changed.emit()

    # --- hit testing ----------------------------------------------------------------------------------------
    def hit(self, x: float, y: float, tolerance: float) -> Hit | None:
        """The vertex within `tolerance` (image pixels) of (x, y), else the shape it is inside.

        The selected shape wins, then the topmost (last drawn)."""
        order = list(range(len(self.shapes) - 1, -1, -1))
        if self.selected is not None:
            order.remove(self.selected)
            order.insert(0, self.selected)
        best: tuple[float, Hit] | None = None
        for index in order:
            for v, (vx, vy) in enumerate(vertices(self.kind, self.shapes[index])):
                distance = math.hypot(vx - x, vy - y)
                if distance <= tolerance and (best is None or distance < best[0]):
                    best = (distance, Hit(index, v))
            if best is not None:
                return best[1]
        for index in order:
            if contains(self.kind, self.shapes[index], x, y):
                return Hit(index)
        return None

    def label_data(self) -> dict:
        """The label data of this kind ({"polygons": [...]} …)."""
        return {self.kind: self.value()}

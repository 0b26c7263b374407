"""The canvas: polygons, points and boxes drawn and edited with a real mouse on a real ImageView.

The shape model is tested alone (undo, clamping, hit testing), then through mouse events sent
to the view's viewport, then inside the labeling tool, where the shapes round-trip through the
store and a shape outside the image is refused with the item named and the store unchanged.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPixmap

from tests.conftest import snapshot_tables
from tests.ui.conftest import SHEET
from vital_desktop.services import label_types as label_type_service
from vital_desktop.services import labels as label_service
from vital_desktop.ui.image_view import ImageView
from vital_desktop.ui.shape_model import ClassSpec, ShapeModel, class_index_for_key, class_specs

CLASSES = [ClassSpec("weld_crack", "Weld crack", "#112233"), ClassSpec("pore", "Pore", "#445566")]


def geometry_type(name: str, kind: str, classes: list[str], colors: dict[str, str] | None = None):
    """A site label type of a geometry kind, as the label-type service builds it from a schema."""
    label = {"type": "string", "enum": classes}
    items = {
        "polygons": {"type": "object", "additionalProperties": False, "required": ["label", "points"],
                     "properties": {"label": label, "points": {"type": "array", "minItems": 3, "items": {
                         "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}}}},
        "points": {"type": "object", "additionalProperties": False, "required": ["label", "x", "y"],
                   "properties": {"label": label, "x": {"type": "number"}, "y": {"type": "number"}}},
    }[kind]
    schema = {"type": "object", "additionalProperties": False, "required": [kind],
              "properties": {kind: {"type": "array", "items": items}}}
    return label_type_service.from_schema(name, {"title": name.replace("_", " ").title(), "kind": kind,
                                                 "schema": schema, "colors": colors or {}})


def add_label_types(monkeypatch, store, actor, specs: list[dict]) -> dict:
    """Create site label types: as store rows when the site keeps its own label types, else
    beside the packaged ones (the same validation path either way)."""
    try:
        from vital_desktop.services import label_type_edits
    except ImportError:
        label_type_edits = None
    if label_type_edits is not None:
        for spec in specs:
            label_type_edits.create_label_type(store, actor, {k: v for k, v in spec.items() if k != "build"})
        return {spec["name"]: label_type_service.get_label_type(store, spec["name"]) for spec in specs}
    extra = {spec["name"]: spec["build"]() for spec in specs}
    original = label_type_service.list_label_types
    monkeypatch.setattr(label_type_service, "list_label_types", lambda source=None, **kw: {**original(source), **extra})
    return extra


@pytest.fixture
def site_types(monkeypatch, store, engineer):
    """Polygon and point label types of this site (classes with their own colours)."""
    outline = [{"name": "weld_crack", "color": "#d81b60"}, {"name": "pore", "color": "#00897b"}]
    return add_label_types(monkeypatch, store, engineer, [
        {"name": "weld_outline", "title": "Weld Outline", "kind": "polygons", "classes": outline,
         "build": lambda: geometry_type("weld_outline", "polygons", ["weld_crack", "pore"],
                                        {"weld_crack": "#d81b60", "pore": "#00897b"})},
        {"name": "weld_points", "title": "Weld Points", "kind": "points", "classes": ["pore", "spatter"],
         "build": lambda: geometry_type("weld_points", "points", ["pore", "spatter"])},
    ])


# --- the model alone ---------------------------------------------------------------------------------


def test_polygon_drawing_undo_redo_and_backspace(qapp):
    model = ShapeModel("polygons", CLASSES)
    model.bounds = (100.0, 80.0)
    for x, y in ((10, 10), (50, 10), (50, 40), (10, 40)):
        model.add_vertex(x, y)
    assert model.drawing == [[10, 10], [50, 10], [50, 40], [10, 40]] and model.shapes == []
    assert model.delete()  # Backspace while drawing: the last vertex
    assert len(model.drawing) == 3
    assert model.close_polygon()
    assert model.shapes == [{"label": "weld_crack", "points": [[10, 10], [50, 10], [50, 40]]}]
    model.undo_stack.undo()  # back to the open polygon
    assert model.shapes == [] and len(model.drawing) == 3
    model.undo_stack.redo()
    assert len(model.shapes) == 1 and model.drawing is None
    model.add_vertex(500, -20)  # outside the image: clamped to its border
    assert model.drawing == [[100.0, 0.0]]
    assert model.cancel_drawing() and model.drawing is None


def test_vertex_delete_keeps_a_polygon_valid_and_the_class_follows_the_key(qapp):
    model = ShapeModel("polygons", CLASSES)
    model.set_shapes([{"label": "weld_crack", "points": [[0, 0], [10, 0], [10, 10], [0, 10]]}])
    model.select(0, 1)
    assert model.delete() and model.shapes[0]["points"] == [[0, 0], [10, 10], [0, 10]]
    model.select(0, 1)
    assert model.delete() and model.shapes == []  # a triangle loses the shape, never becomes a 2-gon
    model.undo_stack.undo()
    model.select(0)
    assert model.pick_class(1) and model.shapes[0]["label"] == "pore" and model.current_label == "pore"
    assert not model.pick_class(7)


def test_drag_is_one_undo_step_and_a_moved_shape_stays_inside(qapp):
    model = ShapeModel("polygons", CLASSES)
    model.bounds = (100.0, 100.0)
    model.set_shapes([{"label": "pore", "points": [[10, 10], [30, 10], [20, 30]]}])
    origin = model.value()
    model.begin_drag()
    for step in range(1, 20):
        model.move_shape(0, origin, step * 10, 0)  # far past the right border
    model.end_drag()
    assert max(p[0] for p in model.shapes[0]["points"]) == 100.0
    assert model.undo_stack.count() == 1
    model.undo_stack.undo()
    assert model.shapes == origin


def test_hit_testing_prefers_vertices_then_the_inside(qapp):
    model = ShapeModel("polygons", CLASSES)
    model.set_shapes([{"label": "pore", "points": [[10, 10], [30, 10], [20, 30]]}])
    assert model.hit(10.5, 10.5, 2).vertex == 0
    assert model.hit(20, 15, 2).vertex is None and model.hit(20, 15, 2).shape == 0
    assert model.hit(80, 80, 2) is None
    boxes = ShapeModel("boxes", CLASSES)
    boxes.bounds = (64.0, 64.0)
    boxes.add_box(5, 5, 20, 10)
    boxes.move_vertex(0, 2, 40, 30)  # drag the bottom-right corner
    assert boxes.shapes[0] == {"label": "weld_crack", "x": 5.0, "y": 5.0, "width": 35.0, "height": 25.0}


def test_classes_colours_and_keys_come_from_the_label_type(site_types):
    outline = site_types["weld_outline"]
    specs = class_specs(outline)
    assert [(s.name, s.color) for s in specs] == [("weld_crack", "#d81b60"), ("pore", "#00897b")]
    assert class_index_for_key(specs, "2") == 1 and class_index_for_key(specs, "3") is None
    custom = [ClassSpec("a", "A", "#000000", "q"), ClassSpec("b", "B", "#000000")]
    assert class_index_for_key(custom, "Q") == 0 and class_index_for_key(custom, "2") == 1


# --- the view with a real mouse --------------------------------------------------------------------


@pytest.fixture
def view(qtbot):
    view = ImageView()
    qtbot.addWidget(view)
    view.resize(420, 420)
    view.show()
    pixmap = QPixmap(200, 200)
    pixmap.fill(QColor("#808080"))
    view.show_pixmap(pixmap)
    qtbot.waitExposed(view)
    return view


def at(view: ImageView, x: float, y: float) -> QPoint:
    return view.mapFromScene(QPointF(x, y))


def test_clicks_draw_a_polygon_and_a_drag_moves_a_vertex(qtbot, view):
    model = ShapeModel("polygons", CLASSES)
    view.set_shape_model(model)
    port = view.viewport()
    for x, y in ((20, 20), (120, 20), (120, 100), (20, 100)):
        qtbot.mouseClick(port, Qt.MouseButton.LeftButton, pos=at(view, x, y))
    assert len(model.drawing) == 4
    qtbot.mouseClick(port, Qt.MouseButton.LeftButton, pos=at(view, 20, 20))  # the first vertex closes it
    assert model.drawing is None and len(model.shapes) == 1
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=at(view, 120, 100))
    qtbot.mouseMove(port, at(view, 150, 160))
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=at(view, 150, 160))
    moved = model.shapes[0]["points"][2]
    assert abs(moved[0] - 150) < 2 and abs(moved[1] - 160) < 2
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=at(view, 60, 50))  # inside: drag the whole shape
    qtbot.mouseMove(port, at(view, 70, 60))
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=at(view, 70, 60))
    assert abs(model.shapes[0]["points"][0][0] - 30) < 2
    view.setFocus()
    model.select(0, 1)
    qtbot.keyClick(view, Qt.Key.Key_Backspace)
    assert len(model.shapes[0]["points"]) == 3
    view.grab()  # paints every shape without error


def test_points_and_boxes_with_the_mouse(qtbot, view):
    points = ShapeModel("points", CLASSES)
    view.set_shape_model(points)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=at(view, 50, 60))
    assert len(points.shapes) == 1 and abs(points.shapes[0]["x"] - 50) < 2
    boxes = ShapeModel("boxes", CLASSES)
    view.set_shape_model(boxes)
    assert points.shapes and view.overlay.model is boxes
    port = view.viewport()
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=at(view, 30, 30))
    qtbot.mouseMove(port, at(view, 90, 70))
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=at(view, 90, 70))
    assert len(boxes.shapes) == 1 and abs(boxes.shapes[0]["width"] - 60) < 2
    view.set_shape_model(None)
    assert view.dragMode() == view.DragMode.ScrollHandDrag


# --- inside the labeling tool, through the store ---------------------------------------------------------


def test_a_polygon_label_round_trips_through_the_store_by_mouse_and_keys(qtbot, window, store, site_types):
    window.go("canonical")
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = window.pages["canonical"]
    tool.set_label_type("weld_outline")
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    shapes = tool.form.shape_model
    assert shapes is not None and tool.image_view.model is shapes
    assert tool.form.shape_list.chooser.list.count() == 2
    qtbot.waitUntil(tool.image_view.has_image, timeout=5000)
    width, height = tool.image_view.image_size()
    item = tool.item.item_ref
    view, port = tool.image_view, tool.image_view.viewport()
    view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_2)  # class 2 (pore) for the next shape
    for fx, fy in ((0.2, 0.2), (0.7, 0.25), (0.6, 0.8)):
        qtbot.mouseClick(port, Qt.MouseButton.LeftButton, pos=at(view, fx * width, fy * height))
    qtbot.keyClick(window, Qt.Key.Key_Return)  # Enter closes the polygon (does not save yet)
    assert shapes.drawing is None and len(shapes.shapes) == 1 and tool.item.item_ref == item
    qtbot.keyClick(window, Qt.Key.Key_Return)  # Enter saves and moves on
    qtbot.waitUntil(lambda: tool.item.item_ref != item and not tool.saving, timeout=10_000)
    stored = label_service.get_label(store, sheet=SHEET, item_ref=item, label_type="weld_outline")
    assert stored is not None and stored.label_data["polygons"][0]["label"] == "pore"
    assert len(stored.label_data["polygons"][0]["points"]) == 3
    tool.open_item(item)
    qtbot.waitUntil(lambda: tool.labels_ready, timeout=5000)
    assert shapes.shapes == stored.label_data["polygons"]  # shown again as stored
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)


def test_a_shape_outside_the_image_is_refused_naming_the_item(qtbot, window, store, site_types):
    window.go("canonical")
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = window.pages["canonical"]
    tool.set_label_type("weld_points")
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    qtbot.waitUntil(lambda: tool.labels_ready, timeout=5000)
    width, _height = tool.image_view.image_size()
    item = tool.item.item_ref
    before = snapshot_tables(store)
    tool.form.shape_model.shapes = [{"label": "pore", "x": width + 372.0, "y": 3.0}]  # e.g. from a bad import
    tool.touched = True
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Return)
    assert tool.item.item_ref == item and not tool.saving
    assert f"item {item}" in tool.message.text() and "outside" in tool.message.text()
    assert snapshot_tables(store) == before
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)


def test_a_read_only_canvas_shows_shapes_but_never_edits_them(qtbot, view):
    model = ShapeModel("boxes", CLASSES)
    model.set_shapes([{"label": "pore", "x": 20, "y": 20, "width": 50, "height": 40}])
    view.set_shape_model(model, editable=False)  # Mode A: the AI answer's boxes over the image
    port = view.viewport()
    qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=at(view, 30, 30))
    qtbot.mouseMove(port, at(view, 120, 120))
    qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=at(view, 120, 120))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Backspace)
    assert model.shapes == [{"label": "pore", "x": 20, "y": 20, "width": 50, "height": 40}]
    assert view.overlay.model is model and view.dragMode() == view.DragMode.ScrollHandDrag
    view.grab()

"""The Canonical Labeling Tool with a big taxonomy and a big polygon (offscreen Qt).

    python -m benchmarks.bench_labeling [--runs 5]      → benchmarks/results/labeling.json

1. Next item with a 50-class taxonomy: in the labeling tool on the demo site, the time from a
   key press (→, or a digit + Enter which saves and moves on) to the next item's image set and
   its view repainted, with a 150 ms pause between keys (the expert's; the prefetch works
   during it). Baseline in the same run, interleaved run by run: the demo's 5-class defect
   type. Each run gives a p95; the report quotes the median of the runs' p95s and the ratio.
2. A 200-vertex polygon on the canvas: frame time = one mouse event delivered to the view plus
   a synchronous repaint of its viewport (what the user waits for before the next frame):
   drawing it (200 clicks), dragging one vertex (100 moves) and dragging the whole shape (100
   moves). Floor in the same run, interleaved: the same mouse moves and repaints over the same
   image with no shape model (nothing to hit-test or draw). Medians of the runs' p95s.

Only public tools: PySide6 offscreen, the app's own services on a temporary demo site.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import percentiles, write_report  # noqa: E402

PAUSE_S = 0.15
CLASSES = 50
VERTICES = 200


_LOOP: list = []
_NONE_KEEP: list = []  # references to None that make up for the ones PySide6 6.12 drops
_NONE = {"added": 0, "at_start": 0}


def pump() -> None:
    """Process pending events through a QEventLoop instance, keeping None alive.

    PySide6 6.12.0 (with Python 3.11) drops a reference to None on many calls that return
    nothing (`processEvents()`, `setText()`, `repaint()`, …: measured -1 per call), and the
    interpreter aborts ("none_dealloc") when None's count reaches zero — after about 5,000 such
    calls in a bare process. 6.11.3 does not (measured 0). The benchmark tops the count up so it
    can run; `none_refs_dropped_per_item` in the report says how fast the app loses them.
    """
    if not _LOOP:
        from PySide6.QtCore import QEventLoop

        _LOOP.append(QEventLoop())
    if not _NONE["at_start"]:
        _NONE["at_start"] = sys.getrefcount(None)
    if sys.getrefcount(None) < 500_000:
        _NONE_KEEP.extend([None] * 1_000_000)
        _NONE["added"] += 1_000_000
    _LOOP[0].processEvents()


def none_refs() -> int:
    """None's reference count, net of the top-ups (falls as PySide6 6.12 drops references)."""
    return sys.getrefcount(None) - _NONE["added"]


def spin(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pump()
        time.sleep(0.002)


def wide_type_spec() -> dict:
    names = [f"class_{i:02d}" for i in range(CLASSES)]
    return {"name": "bench_textures", "title": "Bench textures (50 classes)", "kind": "classification",
            "classes": names}


def add_wide_type(store, actor) -> str:
    """A 50-class label type on the site (a store row where the site keeps its label types)."""
    from vital_desktop.services import label_types

    spec = wide_type_spec()
    try:
        from vital_desktop.services import label_type_edits
    except ImportError:  # label types still packaged: add it beside them for this process
        schema = {"type": "object", "additionalProperties": False, "required": ["class"],
                  "properties": {"class": {"type": "string", "enum": spec["classes"]}}}
        wide = label_types.from_schema(spec["name"], {"title": spec["title"], "class_field": "class",
                                                      "schema": schema})
        original = label_types.list_label_types
        label_types.list_label_types = lambda source=None, **kw: {**original(source), spec["name"]: wide}
    else:
        label_type_edits.create_label_type(store, actor, spec)
    return spec["name"]


def wait_for(condition, what: str, timeout_s: float = 120.0) -> None:
    """Process events until `condition()` holds (fails loudly instead of hanging)."""
    end = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        pump()
        time.sleep(0.0005)


def wait_ready(app, tool) -> None:
    wait_for(lambda: tool.ready and tool.labels_ready, "the labeling tool to show an item with its label")


def next_item_run(app, window, label_type: str, presses: int) -> dict:
    """One run: `presses` arrows then `presses // 2` digit+Enter saves, under `label_type`."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    tool = window.pages["canonical"]
    tool.set_label_type(label_type)
    print(f"  {label_type}: opening", file=sys.stderr, flush=True)
    wait_ready(app, tool)
    assert tool.form is not None
    from PySide6.QtWidgets import QApplication, QMessageBox

    boxes = [w.text() for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert not boxes, f"an error was shown: {boxes}"
    window.activateWindow()  # offscreen Qt drops the activation when top-level popups come and go
    wait_for(window.isActiveWindow, "the main window to be active")
    tool.image_view.setFocus()
    classes = len(tool.form.classes)
    arrows, saves = [], []
    refs_before = none_refs()
    for _ in range(presses):
        before = tool.item.item_ref
        start = time.perf_counter()
        QTest.keyClick(window, Qt.Key.Key_Right)
        wait_for(lambda before=before: tool.item.item_ref != before, "the next item after →")
        tool.image_view.viewport().repaint()
        arrows.append(time.perf_counter() - start)
        spin(app, PAUSE_S)
    for i in range(max(5, presses // 2)):
        wait_for(lambda: tool.labels_ready, "the item's label")
        before = tool.item.item_ref
        QTest.keyClick(window, Qt.Key.Key_1 + (i % 5))
        start = time.perf_counter()
        QTest.keyClick(window, Qt.Key.Key_Return)
        wait_for(lambda before=before: tool.item.item_ref != before,
                 f"the next item after a digit + Enter ({tool.message.text()})")
        tool.image_view.viewport().repaint()
        saves.append(time.perf_counter() - start)
        wait_for(lambda: not tool.saving, "the save to land")
        spin(app, PAUSE_S)
    steps = len(arrows) + len(saves)
    return {"classes": classes, "arrow": percentiles(arrows), "save_and_next": percentiles(saves),
            "none_refs_dropped_per_item": round((refs_before - none_refs()) / steps, 1)}


def measure_next_item(app, window, wide: str, baseline: str, runs: int, presses: int) -> dict:
    results: dict[str, list[dict]] = {wide: [], baseline: []}
    for _ in range(runs):
        for name in (baseline, wide):  # interleaved: the machine's load hits both alike
            results[name].append(next_item_run(app, window, name, presses))

    def median_p95(name: str, what: str) -> float:
        return round(statistics.median(r[what]["p95_ms"] for r in results[name]), 2)

    out = {"runs": runs, "presses_per_run": presses, "expert_pause_s": PAUSE_S}
    for label, name in (("fifty_classes", wide), ("baseline_demo_classes", baseline)):
        out[label] = {"label_type": name, "classes": results[name][0]["classes"],
                      "arrow_next_image_p95_ms_median": median_p95(name, "arrow"),
                      "enter_save_and_next_image_p95_ms_median": median_p95(name, "save_and_next"),
                      "arrow_next_image_p50_ms_median": round(statistics.median(
                          r["arrow"]["p50_ms"] for r in results[name]), 2),
                      "enter_save_and_next_image_p50_ms_median": round(statistics.median(
                          r["save_and_next"]["p50_ms"] for r in results[name]), 2),
                      "arrow_p95_ms_each_run": [round(r["arrow"]["p95_ms"], 2) for r in results[name]]}
    for what in ("arrow_next_image_p95_ms_median", "enter_save_and_next_image_p95_ms_median",
                 "arrow_next_image_p50_ms_median", "enter_save_and_next_image_p50_ms_median"):
        out[f"ratio_{what.removesuffix('_ms_median')}"] = round(out["fifty_classes"][what]
                                                      / max(out["baseline_demo_classes"][what], 1e-9), 3)
    out["image_misses"] = window.pages["canonical"].image_misses
    out["none_refs_dropped_per_item_median"] = statistics.median(
        r["none_refs_dropped_per_item"] for rs in results.values() for r in rs)
    out["none_refcount_when_the_app_started"] = _NONE["at_start"]
    return out


# --- the polygon ---------------------------------------------------------------------------------


def polygon_run(app, view, with_model: bool) -> dict:
    """Frame times for drawing, vertex-dragging and shape-dragging a 200-vertex polygon."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent

    from vital_desktop.ui.shape_model import ClassSpec, ShapeModel

    model = ShapeModel("polygons", [ClassSpec("region", "Region", "#d81b60")]) if with_model else None
    view.set_shape_model(model)
    port = view.viewport()
    width, height = view.image_size()
    cx, cy, radius = width / 2, height / 2, min(width, height) * 0.4
    # 200 vertices on 300° of a circle: the last clicks stay far from the first vertex (a click
    # on the first vertex would close the polygon early)
    arc = 2 * math.pi * 300 / 360
    ring = [(cx + radius * math.cos(arc * k / VERTICES), cy + radius * math.sin(arc * k / VERTICES))
            for k in range(VERTICES)]

    def send(kind, x: float, y: float, buttons=Qt.MouseButton.LeftButton) -> float:
        local = QPointF(view.mapFromScene(QPointF(x, y)))
        button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
        event = QMouseEvent(kind, local, port.mapToGlobal(local), button, buttons, Qt.KeyboardModifier.NoModifier)
        start = time.perf_counter()
        app.sendEvent(port, event)
        port.repaint()
        return time.perf_counter() - start

    drawing, vertex_drag, shape_drag = [], [], []
    for x, y in ring:  # click, click, … (the floor view just receives the same clicks)
        drawing.append(send(QEvent.Type.MouseButtonPress, x, y))
        send(QEvent.Type.MouseButtonRelease, x, y, Qt.MouseButton.NoButton)
    if model is not None:
        assert model.drawing is not None and len(model.drawing) == VERTICES
        model.close_polygon()
        assert len(model.shapes) == 1 and len(model.shapes[0]["points"]) == VERTICES
    x0, y0 = ring[0]
    send(QEvent.Type.MouseButtonPress, x0, y0)
    for step in range(1, 101):
        vertex_drag.append(send(QEvent.Type.MouseMove, x0 - step * 0.2, y0 - step * 0.1))
    send(QEvent.Type.MouseButtonRelease, x0 - 20, y0 - 10, Qt.MouseButton.NoButton)
    send(QEvent.Type.MouseButtonPress, cx, cy)  # inside the polygon: drag the whole shape
    for step in range(1, 101):
        shape_drag.append(send(QEvent.Type.MouseMove, cx + step * 0.15, cy + step * 0.1))
    send(QEvent.Type.MouseButtonRelease, cx + 15, cy + 10, Qt.MouseButton.NoButton)
    if model is not None:
        moved = model.shapes[0]["points"]
        assert len(moved) == VERTICES and abs(moved[1][0] - ring[1][0] - 15) < 1.0, "the whole shape moved"
        assert model.undo_stack.count() == VERTICES + 3  # vertices, close, one step per drag
    view.set_shape_model(None)
    return {"draw": percentiles(drawing), "drag_vertex": percentiles(vertex_drag),
            "drag_shape": percentiles(shape_drag)}


def measure_polygon(app, runs: int) -> dict:
    from PySide6.QtGui import QColor, QPixmap

    from vital_desktop.ui.image_view import ImageView

    view = ImageView()
    view.resize(900, 700)
    view.show()
    pixmap = QPixmap(1024, 768)
    pixmap.fill(QColor("#6d7b86"))
    view.show_pixmap(pixmap)
    spin(app, 0.3)
    edit, floor = [], []
    for _ in range(runs):
        floor.append(polygon_run(app, view, with_model=False))
        edit.append(polygon_run(app, view, with_model=True))
    out: dict = {"runs": runs, "vertices": VERTICES, "view_px": [900, 700], "image_px": [1024, 768]}
    for what in ("draw", "drag_vertex", "drag_shape"):
        polygon = statistics.median(r[what]["p95_ms"] for r in edit)
        bare = statistics.median(r[what]["p95_ms"] for r in floor)
        out[what] = {"frame_p95_ms_median": round(polygon, 3), "floor_no_shapes_p95_ms_median": round(bare, 3),
                     "ratio_to_floor": round(polygon / max(bare, 1e-9), 2),
                     "frame_p50_ms_median": round(statistics.median(r[what]["p50_ms"] for r in edit), 3),
                     "floor_p50_ms_median": round(statistics.median(r[what]["p50_ms"] for r in floor), 3),
                     "p95_ms_each_run": [round(r[what]["p95_ms"], 3) for r in edit]}
    view.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--presses", type=int, default=30)
    args = parser.parse_args()
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from vital_desktop.app import build_main_window
    from vital_desktop.services import accounts, site
    from vital_desktop.services.demo_site import DEMO_SHEET
    from vital_desktop.store.db import open_store

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "demo"
        site.init_site(home, demo=True)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(Path(tmp) / "settings"))
        app = QApplication.instance() or QApplication([])
        pump()
        store = open_store(home)
        user = accounts.get_user(store, "engineer")
        wide = add_wide_type(store, user)
        window = build_main_window(store, user, stage="canonical", sheet=DEMO_SHEET)
        window.resize(1280, 720)
        window.show()
        spin(app, 0.5)
        wait_ready(app, window.pages["canonical"])
        report = {"next_item": measure_next_item(app, window, wide, "classification", args.runs, args.presses),
                  "polygon_200_vertices": measure_polygon(app, args.runs)}
        while window.context.jobs.jobs:
            spin(app, 0.05)
        window.close()
        store.close()
    write_report("labeling", report)
    sys.stdout.flush()
    # PySide6 6.12.0 drops a reference to None on many void calls (see `pump`); a long run can
    # abort while the interpreter tears down, after the report is written: leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()

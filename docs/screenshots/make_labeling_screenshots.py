"""Render the Canonical Labeling Tool with polygons, points and a 50-class taxonomy, offscreen.

    python docs/screenshots/make_labeling_screenshots.py [--home DIR]

Builds a demo site in a temporary folder (unless --home is given), adds three site label types
(crystal regions as polygons, defect spots as points, a 50-class texture taxonomy), stores a
polygon and a point label on one item through the label service, and grabs the main window at
1280×720 and 1920×1080:

- canonical-polygons-<size>.png: two stored polygons (one selected, its vertices shown) and a
  polygon being drawn;
- canonical-points-<size>.png: stored points in their class colours;
- canonical-classes-<size>.png: 50 classes, the filter typed ("ar").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

SIZES = ((1280, 720), (1920, 1080))
ITEM = "INS-00007"
REGION_CLASSES = [{"name": "inclusion_zone", "title": "Inclusion zone", "color": "#e65100"},
                  {"name": "crack_path", "title": "Crack path", "color": "#c62828"},
                  {"name": "clear", "title": "Clear crystal", "color": "#2e7d32"}]
SPOT_CLASSES = [{"name": "bubble", "title": "Bubble", "color": "#1565c0"},
                {"name": "chip", "title": "Edge chip", "color": "#ad1457"}]


def spin(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def _shape_schema(kind: str, names: list[str]) -> dict:
    label = {"type": "string", "enum": names}
    if kind == "polygons":
        item = {"type": "object", "required": ["label", "points"], "properties": {
            "label": label, "points": {"type": "array", "minItems": 3, "items": {
                "type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}}}}
    else:
        item = {"type": "object", "required": ["label", "x", "y"],
                "properties": {"label": label, "x": {"type": "number"}, "y": {"type": "number"}}}
    return {"type": "object", "required": [kind], "properties": {kind: {"type": "array", "items": item}}}


def add_types(store, actor) -> None:
    """The site's own label types (store rows where the site keeps them, else beside the packaged ones)."""
    from vital_desktop.services import label_types

    texture_names = [f"{w}_{i}" for i, w in enumerate(
        ("amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "jade") * 5)]
    specs = [
        {"name": "crystal_regions", "title": "Crystal regions", "kind": "polygons", "classes": REGION_CLASSES},
        {"name": "defect_spots", "title": "Defect spots", "kind": "points", "classes": SPOT_CLASSES},
        {"name": "textures", "title": "Surface texture (50 classes)", "kind": "classification",
         "classes": texture_names},
    ]
    try:
        from vital_desktop.services import label_type_edits
    except ImportError:
        extra = {}
        for spec in specs:
            names = [c["name"] if isinstance(c, dict) else c for c in spec["classes"]]
            colors = {c["name"]: c["color"] for c in spec["classes"] if isinstance(c, dict)}
            schema = _shape_schema(spec["kind"], names) if spec["kind"] != "classification" else {
                "type": "object", "required": ["class"], "properties": {"class": {"type": "string", "enum": names}}}
            extra[spec["name"]] = label_types.from_schema(spec["name"], {
                "title": spec["title"], "kind": spec["kind"], "schema": schema, "colors": colors,
                "class_field": "class" if spec["kind"] == "classification" else None})
        original = label_types.list_label_types
        label_types.list_label_types = lambda source=None, **kw: {**original(source), **extra}
    else:
        for spec in specs:
            label_type_edits.create_label_type(store, actor, spec)


def store_labels(store, actor, sheet: str) -> None:
    from vital_desktop.services import labels

    polygons = {"polygons": [
        {"label": "inclusion_zone", "points": [[62, 70], [118, 52], [150, 88], [132, 136], [80, 128]]},
        {"label": "crack_path", "points": [[150, 150], [208, 164], [226, 204], [170, 214], [142, 186]]},
    ]}
    points = {"points": [{"label": "bubble", "x": 70, "y": 80}, {"label": "bubble", "x": 180, "y": 60},
                         {"label": "chip", "x": 128, "y": 200}, {"label": "chip", "x": 220, "y": 150}]}
    labels.set_label(store, actor=actor, sheet=sheet, item_ref=ITEM, label_type="crystal_regions",
                     label_data=polygons)
    labels.set_label(store, actor=actor, sheet=sheet, item_ref=ITEM, label_type="defect_spots", label_data=points)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    home = args.home or Path(tmp.name) / "demo"

    from vital_desktop.services import site

    site.init_site(home, demo=True)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from vital_desktop.app import build_main_window
    from vital_desktop.services import accounts
    from vital_desktop.services.demo_site import DEMO_SHEET
    from vital_desktop.store.db import open_store
    from vital_desktop.ui.theme import STYLE_SHEET

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(Path(tmp.name) / "settings"))
    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)
    store = open_store(home)
    user = accounts.get_user(store, "engineer")
    add_types(store, user)
    store_labels(store, user, DEMO_SHEET)
    window = build_main_window(store, user, stage="canonical", sheet=DEMO_SHEET, item=ITEM)
    window.show()
    tool = window.pages["canonical"]

    def settle() -> None:
        spin(app, 0.3)
        while not tool.ready or not tool.labels_ready or window.context.jobs.jobs:
            spin(app, 0.05)
        spin(app, 0.4)

    for width, height in SIZES:
        window.resize(width, height)
        settle()
        tool.set_label_type("crystal_regions")
        settle()
        shapes = tool.form.shape_model
        shapes.pick_class(2)  # the next polygon is "clear crystal"
        shapes.select(0, 2)  # the first stored polygon selected, its third vertex grabbed
        for x, y in ((40, 170), (90, 160), (110, 230)):  # a polygon being drawn
            shapes.add_vertex(x, y)
        tool.image_view.overlay.hover = None
        spin(app, 0.4)
        shot(window, f"canonical-polygons-{width}x{height}.png")
        shapes.cancel_drawing()
        tool.set_label_type("defect_spots")
        settle()
        tool.form.shape_model.select(2)
        spin(app, 0.3)
        shot(window, f"canonical-points-{width}x{height}.png")
        tool.set_label_type("textures")
        settle()
        tool.form.start_filter("ar")
        spin(app, 0.4)
        shot(window, f"canonical-classes-{width}x{height}.png")
        tool.form.class_picker._finish(accept=False)
    while window.context.jobs.jobs:
        spin(app, 0.1)
    window.close()
    store.close()


def shot(window, name: str) -> None:
    path = HERE / name
    window.grab().save(str(path))
    print("wrote", path, window.width(), "x", window.height())


if __name__ == "__main__":
    main()

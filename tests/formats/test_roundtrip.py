"""Every format: export → import into a fresh site → identical labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from vital_desktop.services import formats, labels
from vital_desktop.services.formats.base import ExportItem, ExportSet, TypeSpec

BOXES = {
    "INS-0001": {"boxes": [{"label": "crack", "x": 1, "y": 2, "width": 10.5, "height": 7.25},
                           {"label": "inclusion", "x": 0.1, "y": 0.2, "width": 0.3, "height": 31.7}]},
    "INS-0002": {"boxes": [{"label": "delamination", "x": 3.333333, "y": 4, "width": 20, "height": 8}]},
    "INS-0003": {"boxes": []},
}
CLASSES = {"INS-0004": "crack", "INS-0005": "none", "INS-0006": "inclusion"}


def _seed(site) -> None:
    user = site.user("inspector")
    for ref, data in BOXES.items():
        labels.set_label(site.store, actor=user, sheet=site.sheet, item_ref=ref, label_type="localization",
                         label_data=data)
    for ref, cls in CLASSES.items():
        labels.set_label(site.store, actor=user, sheet=site.sheet, item_ref=ref, label_type="classification",
                         label_data={"defect_type": cls})


def _data(site, label_type: str) -> dict[str, dict]:
    return {r.item_ref: r.label_data for r in labels.labels_for_sheet(site.store, sheet=site.sheet,
                                                                        label_type=label_type)}


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc", "labelme", "label-studio", "cvat"])
def test_box_labels_survive_a_round_trip(small_site, fresh_site, tmp_path: Path, fmt: str) -> None:
    _seed(small_site)
    out = tmp_path / f"export-{fmt}"
    result = formats.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt=fmt,
                                   sheet="Crystals", label_type="localization")
    assert result["labels"] == 3 and out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    assert formats.detect_format(out) == fmt
    summary, _ = formats.import_labels(fresh_site.store, actor=fresh_site.user("inspector"), path=out,
                                       sheet="Crystals", label_type="localization")
    assert summary.created == 3
    assert _data(fresh_site, "localization") == _data(small_site, "localization")


@pytest.mark.parametrize("fmt", ["folder", "label-studio", "cvat", "labelme"])
def test_class_labels_survive_a_round_trip(small_site, fresh_site, tmp_path: Path, fmt: str) -> None:
    _seed(small_site)
    out = tmp_path / f"export-{fmt}"
    formats.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt=fmt, sheet="Crystals",
                          label_type="classification")
    summary, _ = formats.import_labels(fresh_site.store, actor=fresh_site.user("inspector"), path=out, fmt=fmt,
                                       sheet="Crystals", label_type="classification")
    assert summary.created == 3
    assert _data(fresh_site, "classification") == _data(small_site, "classification")


POLYGONS = TypeSpec("outline", "polygons", ["crack", "pore"], None)
POINTS = TypeSpec("spots", "points", ["pore"], None)


def _items(spec: TypeSpec, data: list[dict]) -> ExportSet:
    return ExportSet(spec=spec, items=[ExportItem("S", f"I{i}", f"sub/img{i}.png", None, 64, 48, d)
                                       for i, d in enumerate(data)])


@pytest.mark.parametrize("fmt,spec,data", [
    ("coco", POLYGONS, [{"polygons": [{"label": "crack", "points": [[1, 2], [30.5, 2], [12, 40.125]]}]}]),
    ("yolo", POLYGONS, [{"polygons": [{"label": "pore", "points": [[0, 0], [64, 0], [64, 48], [0.1, 47.9]]}]}]),
    ("labelme", POLYGONS, [{"polygons": [{"label": "crack", "points": [[1, 2], [3, 4], [5, 1]]}]}]),
    ("label-studio", POLYGONS, [{"polygons": [{"label": "crack", "points": [[1, 2], [3, 4], [5, 1]]}]}]),
    ("cvat", POLYGONS, [{"polygons": [{"label": "crack", "points": [[1, 2], [3, 4], [5, 1]]}]}]),
    ("labelme", POINTS, [{"points": [{"label": "pore", "x": 3.5, "y": 40}]}]),
    ("label-studio", POINTS, [{"points": [{"label": "pore", "x": 3.5, "y": 40}]}]),
    ("cvat", POINTS, [{"points": [{"label": "pore", "x": 3.5, "y": 40}]}]),
])
def test_polygon_and_point_shapes_survive_writer_then_reader(tmp_path: Path, fmt, spec, data) -> None:
    from vital_desktop.services.formats.base import data_from_image
    from vital_desktop.services.formats.importer import _to_pixels

    entry = formats.FORMATS[fmt]
    target = tmp_path / "out"
    entry.write(target, _items(spec, data))
    images = entry.read(target)
    assert len(images) == 1
    _to_pixels(images[0], 64, 48)
    assert data_from_image(spec, images[0]) == data[0]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_label_rows_survive_a_round_trip(small_site, fresh_site, tmp_path: Path, fmt: str) -> None:
    _seed(small_site)
    out = tmp_path / f"labels.{fmt}"
    result = formats.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt=fmt,
                                   label_type="localization")
    assert result["labels"] == 3
    summary, _ = formats.import_labels(fresh_site.store, actor=fresh_site.user("inspector"), path=out)
    assert summary.format == fmt and summary.created == 3
    assert _data(fresh_site, "localization") == _data(small_site, "localization")

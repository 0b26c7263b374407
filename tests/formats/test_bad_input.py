"""Malformed label files of every format: a clear error naming the file and row, store unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.services import formats

FIXTURES = Path(__file__).parent / "fixtures"


def _coco(**change) -> dict:
    doc = json.loads((FIXTURES / "coco.json").read_text())
    for key, value in change.items():
        target, _, field = key.partition("__")
        doc[target][0][field] = value
    return doc


BAD_JSON = {
    "truncated JSON": ('{"images": [{"id": 1, "file_name": "IMG_0001.png"', r"not valid JSON.*line 1"),
    "wrong type": (_coco(images__width="wide"), r"image 0: width must be a number"),
    "negative size": (_coco(annotations__bbox=[1, 1, -4, 3]), r"annotation id 1.*non-positive|size"),
    "NaN coordinate": (_coco(annotations__bbox=[float("nan"), 1, 4, 3]), r"annotation id 1.*finite"),
    "outside the image": (_coco(annotations__bbox=[30, 1, 4, 3]), r"image id 101.*outside"),
    "unknown image id": (_coco(annotations__image_id=999), r"annotation id 1: unknown image id 999"),
    "RLE mask": (_coco(annotations__segmentation={"counts": "abc", "size": [32, 32]}), r"RLE masks"),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_bad_coco_files_are_refused_with_the_row_named(small_site, tmp_path: Path, case: str) -> None:
    content, message = BAD_JSON[case]
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=message):
        formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=path, fmt="coco",
                              sheet="Crystals", label_type="localization")
    assert snapshot_tables(small_site.store) == before


XXE = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<annotation><filename>IMG_0001.png</filename><object><name>&secret;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>
"""
BOMB = """<?xml version="1.0"?>
<!DOCTYPE annotations [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<annotations><image id="0" name="IMG_0001.png"><tag label="&b;"/></image></annotations>
"""


@pytest.mark.parametrize("fmt,text", [("voc", XXE), ("cvat", BOMB)])
def test_xml_with_entities_is_refused(small_site, tmp_path: Path, fmt: str, text: str) -> None:
    path = tmp_path / "evil.xml"
    path.write_text(text)
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="DTD or entity"):
        formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=path, fmt=fmt,
                              sheet="Crystals", label_type="localization")
    assert snapshot_tables(small_site.store) == before


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


LABELME_POLY = {"version": "5.4.1", "flags": {}, "imagePath": "IMG_0001.png", "imageWidth": 32, "imageHeight": 32,
                "shapes": [{"label": "crack", "points": [[1, 1], [5, 5]], "shape_type": "polygon"}]}


@pytest.mark.parametrize("case,fmt,files,message", [
    ("yolo class out of range", "yolo", {"data.yaml": "names: [crack]\n", "labels/train/IMG_0001.txt": "3 .5 .5 .1 .1\n"},
     r"labels/train/IMG_0001.txt line 1: class number 3"),
    ("yolo NaN", "yolo", {"data.yaml": "names: [crack]\n", "labels/train/IMG_0001.txt": "0 nan .5 .1 .1\n"},
     r"line 1.*not a finite number"),
    ("yolo odd coordinates", "yolo", {"data.yaml": "names: [crack]\n",
                                      "labels/train/IMG_0001.txt": "0 .1 .1 .2 .2\n0 .1 .1 .2 .2 .3\n"},
     r"IMG_0001.txt line 2: expected 'class xc yc w h'"),
    ("labelme circle", "labelme", {"IMG_0001.json": json.dumps({**LABELME_POLY, "shapes": [
        {"label": "crack", "points": [[1, 1], [5, 5]], "shape_type": "circle"}]})}, r"shape 0: shape type 'circle'"),
    ("label studio rotated", "label-studio", {"ls.json": json.dumps([{"id": 4, "data": {"image": "IMG_0001.png"},
        "annotations": [{"result": [{"type": "rectanglelabels", "original_width": 32, "original_height": 32,
                                     "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rotation": 30,
                                               "rectanglelabels": ["crack"]}}]}]}])}, r"task id 4 result 0: rotated"),
    ("unknown image", "voc", {"x.xml": (FIXTURES / "voc" / "IMG_0001.xml").read_text().replace(
        "IMG_0001.png", "IMG_9999.png")}, r"IMG_9999.png' is not an item"),
])
def test_bad_files_of_the_other_formats(small_site, tmp_path: Path, case, fmt, files, message) -> None:
    for name, text in files.items():
        _write(tmp_path / "in", name, text)
    path = tmp_path / "in" if len(files) > 1 or fmt in ("yolo",) else tmp_path / "in" / next(iter(files))
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=message):
        formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=path, fmt=fmt,
                              sheet="Crystals", label_type="localization")
    assert snapshot_tables(small_site.store) == before


def test_a_polygon_of_fewer_than_three_points_is_refused(tmp_path: Path) -> None:
    from vital_desktop.services.formats.base import TypeSpec, data_from_image
    from vital_desktop.services.formats.geometry import check_shapes

    path = _write(tmp_path, "IMG_0001.json", json.dumps(LABELME_POLY))
    [image] = formats.FORMATS["labelme"].read(path)
    data = data_from_image(TypeSpec("outline", "polygons", ["crack"], None), image)
    with pytest.raises(ValidationError, match="3"):
        check_shapes(data, 32, 32, where=image.where)


def test_an_unrecognisable_file_asks_for_the_format(small_site, tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.txt", "hello")
    with pytest.raises(ValidationError, match="cannot tell the format of notes.txt"):
        formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=path, sheet="Crystals",
                              label_type="localization")

"""Files as the tools write them (hand-written from each format's published specification)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.services import formats, labels, predict, sheets

FIXTURES = Path(__file__).parent / "fixtures"


def _box(label, x, y, w, h) -> dict:
    return {"label": label, "x": x, "y": y, "width": w, "height": h}


EXPECTED = {
    "coco.json": {"INS-0001": [_box("crack", 4.5, 6, 10, 8.25), _box("inclusion", 20, 20, 5, 5)],
                  "INS-0002": [_box("delamination", 0, 0, 32, 32)], "INS-0003": []},
    "yolo": {"INS-0001": [_box("crack", 12, 14, 8, 4), _box("inclusion", 3, 27, 2, 2)], "INS-0002": []},
    "voc": {"INS-0001": [_box("crack", 3, 4, 10, 8)]},
    "labelme": {"INS-0001": [_box("crack", 3, 4, 10, 8)]},
    "xanylabeling": {"INS-0002": [_box("inclusion", 1, 2, 10, 5)]},
    "label_studio.json": {"INS-0001": [_box("crack", 4, 8, 16, 8)], "INS-0002": [_box("delamination", 0, 0, 32, 32)]},
    "cvat.xml": {"INS-0001": [_box("crack", 3, 4, 10, 8), _box("inclusion", 20.5, 1, 9.5, 8.5)], "INS-0004": []},
}
FORMAT = {"coco.json": "coco", "yolo": "yolo", "voc": "voc", "labelme": "labelme", "xanylabeling": "labelme",
          "label_studio.json": "label-studio", "cvat.xml": "cvat"}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_tool_files_import_with_exact_pixel_coordinates(small_site, name: str) -> None:
    path = FIXTURES / name
    assert formats.detect_format(path) == FORMAT[name]
    summary, _ = formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=path,
                                       sheet="Crystals", label_type="localization")
    assert summary.format == FORMAT[name] and summary.created == len(EXPECTED[name])
    got = {r.item_ref: r.label_data["boxes"] for r in labels.labels_for_sheet(small_site.store, sheet="Crystals")}
    assert got == EXPECTED[name]


def test_pycocotools_loads_our_coco_export(small_site, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=FIXTURES / "coco.json",
                          sheet="Crystals", label_type="localization")
    out = tmp_path / "ours.json"
    formats.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt="coco", sheet="Crystals",
                          label_type="localization")
    coco = COCO(str(out))
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == 3
    crack = coco.getCatIds(catNms=["crack"])
    [ann] = coco.loadAnns(coco.getAnnIds(catIds=crack))
    assert ann["bbox"] == [4.5, 6, 10, 8.25] and coco.imgs[ann["image_id"]]["width"] == 32
    assert coco.annToMask(ann).sum() > 0  # the segmentation written for the box rasterises


def test_a_second_import_that_disagrees_becomes_a_conflict_not_an_overwrite(small_site) -> None:
    formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=FIXTURES / "voc",
                          sheet="Crystals", label_type="localization")
    summary, _ = formats.import_labels(small_site.store, actor=small_site.user("inspector2"), path=FIXTURES / "cvat.xml",
                                       sheet="Crystals", label_type="localization")
    assert (summary.created, summary.conflicts) == (1, 1)
    label = labels.get_label(small_site.store, sheet="Crystals", item_ref="INS-0001", label_type="localization")
    assert label.label_data["boxes"] == EXPECTED["voc"]["INS-0001"] and label.review_state == "conflict"


def test_ambiguous_file_names_and_unknown_classes_are_refused_by_name(small_site, tmp_path: Path) -> None:
    engineer = small_site.user("engineer")
    root = tmp_path / "twin"
    for sub in ("a", "b"):
        (root / sub).mkdir(parents=True)
        shutil.copy(small_site.images / "IMG_0001.png", root / sub / "IMG_0001.png")
    sheets.import_sheet(small_site.store, actor=engineer, name="Twins", metadata_path=None, image_root=root)
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=r"ambiguous.*a/IMG_0001\.png, b/IMG_0001\.png"):
        formats.import_labels(small_site.store, actor=engineer, path=FIXTURES / "voc", sheet="Twins",
                              label_type="localization")
    coco = json.loads((FIXTURES / "coco.json").read_text())
    coco["categories"][0]["name"] = "bubble"
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(coco))
    with pytest.raises(ValidationError, match="no class.*bubble"):
        formats.import_labels(small_site.store, actor=engineer, path=odd, sheet="Crystals", label_type="localization")
    assert snapshot_tables(small_site.store) == before


def test_a_class_csv_and_an_image_folder_import_classification_labels(small_site, tmp_path: Path) -> None:
    csv_file = tmp_path / "classes.csv"
    csv_file.write_text("filename,label\nIMG_0001.png,crack\nIMG_0002.png,none\n")
    summary, _ = formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=csv_file,
                                       sheet="Crystals", label_type="classification")
    assert summary.format == "csv" and summary.created == 2
    folder = tmp_path / "by-class"
    (folder / "train" / "inclusion").mkdir(parents=True)
    shutil.copy(small_site.images / "IMG_0005.png", folder / "train" / "inclusion" / "IMG_0005.png")
    summary, _ = formats.import_labels(small_site.store, actor=small_site.user("inspector"), path=folder,
                                       sheet="Crystals", label_type="classification")
    assert summary.format == "folder" and summary.created == 1
    got = {r.item_ref: r.label_data for r in labels.labels_for_sheet(small_site.store, sheet="Crystals")}
    assert got == {"INS-0001": {"defect_type": "crack"}, "INS-0002": {"defect_type": "none"},
                   "INS-0005": {"defect_type": "inclusion"}}


def test_exports_are_governed_by_the_use(small_site, tmp_path: Path) -> None:
    inspector = small_site.user("inspector")
    labels.set_label(small_site.store, actor=inspector, sheet="Crystals", item_ref="INS-0001",
                     label_type="classification", label_data={"defect_type": "crack"})
    labels.set_label(small_site.store, actor=inspector, sheet="Crystals", item_ref="INS-0002",
                     label_type="classification", label_data={"defect_type": "none"}, prohibited_uses=["training"],
                     usage_reason="serial number visible")
    out = tmp_path / "ls.json"
    result = formats.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt="label-studio",
                                   sheet="Crystals", label_type="classification")
    assert (result["labels"], result["withheld"]) == (1, 1)
    tasks = json.loads(out.read_text())
    assert [t["data"]["item_ref"] for t in tasks] == ["INS-0001"]
    result = formats.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt="label-studio",
                                   sheet="Crystals", label_type="classification", use="testing")
    assert (result["labels"], result["withheld"]) == (2, 0)


def test_label_studio_export_carries_model_predictions_as_pre_annotations(small_site, tmp_path: Path) -> None:
    from vital_desktop.store.models import Prediction

    labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Crystals", item_ref="INS-0001",
                     label_type="classification", label_data={"defect_type": "crack"})
    sheet_id = sheets.get_sheet(small_site.store, "Crystals").id
    with small_site.store.session() as s:
        s.add(Prediction(id="p1", model_id="m", model_name="clf", model_version=3, kind="onnx", sheet_id=sheet_id,
                         item_ref="INS-0001", output={}, predicted_class="inclusion", confidence=0.8,
                         latency_ms=1.0, created_by="engineer"))
    out = tmp_path / "ls.json"
    formats.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt="label-studio",
                          sheet="Crystals", label_type="classification")
    [task] = json.loads(out.read_text())
    assert task["annotations"][0]["result"][0]["value"] == {"choices": ["crack"]}
    [pre] = task["predictions"]
    assert pre["model_version"] == "clf v3" and pre["score"] == 0.8
    assert pre["result"][0]["value"] == {"choices": ["inclusion"]}
    assert predict is not None

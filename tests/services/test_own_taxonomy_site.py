"""A site with no demo at all: it creates its own label type (unicode class names), imports a
sheet of its own images, labels them from the command line, trains and predicts with its own
classes; the model card records the label-type version and classes, and says so once the
taxonomy has moved on."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vital_desktop.cli import main

CLASSES = ["écrou", "болт", "washer"]


def _images(root: Path) -> Path:
    """Nine 24x24 images per class: dark, mid-grey with stripes, bright (easy to tell apart)."""
    import numpy as np
    from PIL import Image

    folder = root / "images"
    folder.mkdir(parents=True)
    rows = []
    rng = np.random.default_rng(3)
    for c, cls in enumerate(CLASSES):
        for i in range(9):
            pixels = np.full((24, 24), 30 + 100 * c, dtype=np.uint8)
            if c == 1:
                pixels[::3, :] = 250
            pixels = np.clip(pixels + rng.integers(0, 12, pixels.shape), 0, 255).astype(np.uint8)
            name = f"part_{c}_{i}.png"
            Image.fromarray(pixels, "L").save(folder / name)
            rows.append({"part_id": f"P-{c}{i}", "image": name, "truth": cls})
    with open(root / "parts.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["part_id", "image", "truth"])
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.mark.slow
def test_a_site_without_the_demo_labels_trains_and_predicts_its_own_classes(tmp_path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"

    def vital(*args: str, user: str | None = "boss") -> dict:
        if user:
            monkeypatch.setenv("VITAL_USER", user)
        monkeypatch.setenv("VITAL_PASSWORD", "boss-password-1")
        code = main(["--home", str(home), "--json", *args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out) if out.strip() else {}

    monkeypatch.delenv("VITAL_USER", raising=False)
    vital("init", "--admin", "boss", user=None)
    starter = [t["name"] for t in vital("label", "types")["label_types"]]
    assert "classification" not in starter and "image-class" in starter  # no demo types on a real site
    created = vital("label", "types", "create", "parts", "--classes", ",".join(CLASSES), "--title", "Parts")
    assert created["label_type"]["version"] == "1.0.0" and created["label_type"]["class_field"] == "class"

    images = _images(tmp_path / "data")
    vital("sheet", "import", "Parts", "--metadata", str(tmp_path / "data" / "parts.csv"), "--images", str(images),
          "--key", "part_id", "--image-column", "image")
    with open(tmp_path / "data" / "parts.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    first, rest = rows[0], rows[1:]
    vital("label", "set", "--sheet", "Parts", "--item", first["part_id"], "--type", "parts",
          "--data", json.dumps({"class": first["truth"]}, ensure_ascii=False))
    labels_file = tmp_path / "labels.csv"
    with open(labels_file, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data"])
        for r in rest:
            writer.writerow(["Parts", r["part_id"], "parts", json.dumps({"class": r["truth"]}, ensure_ascii=False)])
    vital("label", "import", str(labels_file))

    trained = vital("train", "--sheet", "Parts", "--name", "parts-clf", "--label-type", "parts", "--activate",
                    "--seed", "1")
    model = vital("model", "show", "parts-clf")["model"]
    assert sorted(model["classes"]) == sorted(CLASSES), trained
    assert model["card"]["label_type"] == "parts" and model["card"]["label_type_version"] == "1.0.0"
    assert sorted(model["card"]["label_type_classes"]) == sorted(CLASSES)

    predictions = vital("predict", "--sheet", "Parts")["predictions"]
    assert len(predictions) == len(rows) and {p["predicted_class"] for p in predictions} <= set(CLASSES)
    truth = {r["part_id"]: r["truth"] for r in rows}
    right = sum(p["predicted_class"] == truth[p["item_ref"]] for p in predictions)
    assert right >= len(rows) * 2 // 3  # easy images: most are right (not a speed or accuracy claim)
    assert predictions[0]["label_type_note"] == ""

    vital("label", "types", "add-class", "parts", "spring", "--yes")
    again = vital("predict", "--sheet", "Parts", "--items", rows[0]["part_id"])["predictions"]
    assert again[0]["label_type_note"] == "trained on parts@1.0.0; the label type is now parts@1.1.0"

"""`--add-classes`: unknown categories of an annotation file go to a DRAFT label-type version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PASSWORDS, snapshot_tables
from vital_desktop.core.errors import PermissionDenied, ValidationError
from vital_desktop.services import formats, label_types, labels
from vital_desktop.services.label_type_edits import history
from vital_desktop.store.models import CanonicalLabel, CanonicalLabelHistory

FIXTURES = Path(__file__).parent / "fixtures"


def _coco_with(tmp_path: Path, name: str, *, renames: dict[str, str]) -> Path:
    coco = json.loads((FIXTURES / "coco.json").read_text())
    for category in coco["categories"]:
        category["name"] = renames.get(category["name"], category["name"])
    path = tmp_path / name
    path.write_text(json.dumps(coco))
    return path


def _versions(store) -> dict[str, str]:
    return {v.version: v.status for v in label_types.versions(store, "localization")}


def test_unknown_classes_are_refused_by_name_without_the_flag(small_site, tmp_path: Path) -> None:
    odd = _coco_with(tmp_path, "odd.json", renames={"crack": "bubble", "inclusion": "void"})
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=r"no class\(es\) bubble, void.*--add-classes"):
        formats.import_labels(small_site.store, actor=small_site.user("engineer"), path=odd, sheet="Crystals",
                              label_type="localization")
    assert snapshot_tables(small_site.store) == before


def test_add_classes_makes_a_draft_and_the_labels_are_validated_against_it(small_site, tmp_path: Path) -> None:
    store, engineer = small_site.store, small_site.user("engineer")
    published = label_types.get_label_type(store, "localization")
    odd = _coco_with(tmp_path, "odd.json", renames={"crack": "bubble"})
    summary, changes = formats.import_labels(store, actor=engineer, path=odd, sheet="Crystals",
                                             label_type="localization", add_classes=True)
    draft_version = label_types.next_version(published.version, "minor")
    assert summary.added_classes == ["bubble"] and summary.draft_version == draft_version
    assert summary.created == 3 and changes.label_types
    assert _versions(store) == {published.version: "published", draft_version: "draft"}
    draft = label_types.get_label_type(store, "localization", draft_version)
    assert draft.classes() == published.classes() + ["bubble"]
    assert label_types.get_label_type(store, "localization").classes() == published.classes()  # published: as it was
    boxes = labels.get_label(store, sheet="Crystals", item_ref="INS-0001", label_type="localization").label_data
    assert [b["label"] for b in boxes["boxes"]] == ["bubble", "inclusion"]
    with store.read() as s:  # every label and history row names the draft it was validated against
        assert {r.label_type_version for r in s.query(CanonicalLabel)} == {draft_version}
        assert {r.label_type_version for r in s.query(CanonicalLabelHistory)} == {draft_version}
    assert history(store, "localization")[-1]["action"] == "add_classes_draft"

    # a second file with another new class goes to the same draft (no second draft version)
    other = _coco_with(tmp_path, "other.json", renames={"crack": "bubble", "delamination": "pore"})
    summary, _ = formats.import_labels(store, actor=engineer, path=other, sheet="Crystals",
                                       label_type="localization", add_classes=True)
    assert summary.added_classes == ["pore"] and summary.draft_version == draft_version
    assert label_types.get_label_type(store, "localization", draft_version).classes()[-2:] == ["bubble", "pore"]
    assert len(_versions(store)) == 2


def test_add_classes_needs_taxonomy_rights_and_a_refused_file_adds_no_class(small_site, tmp_path: Path) -> None:
    store = small_site.store
    odd = _coco_with(tmp_path, "odd.json", renames={"crack": "bubble"})
    before = snapshot_tables(store)
    with pytest.raises(PermissionDenied):
        formats.import_labels(store, actor=small_site.user("inspector"), path=odd, sheet="Crystals",
                              label_type="localization", add_classes=True)
    coco = json.loads(odd.read_text())
    coco["annotations"][0]["bbox"] = [0, 0, 5000, 10]  # outside the image: the whole file is refused
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    with pytest.raises(ValidationError, match="outside"):
        formats.import_labels(store, actor=small_site.user("engineer"), path=bad, sheet="Crystals",
                              label_type="localization", add_classes=True)
    assert snapshot_tables(store) == before


def test_add_classes_from_the_command_line(small_site, tmp_path: Path, monkeypatch, capsys) -> None:
    from vital_desktop.cli import main

    odd = _coco_with(tmp_path, "odd.json", renames={"inclusion": "bubble"})
    small_site.store.close()
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["engineer"])
    base = ["--home", str(small_site.home), "--json", "label", "import", str(odd), "--sheet", "Crystals",
            "--type", "localization"]
    assert main(base) != 0
    assert "bubble" in capsys.readouterr().err
    assert main([*base, "--add-classes"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added_classes"] == ["bubble"] and out["draft_version"] and out["created"] == 3
    assert "text" not in out  # --json: the machine-readable object only

"""Label types as versioned site data: kinds, classes, drafts, publishing, diff, bad input."""

from __future__ import annotations

import json

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ConflictError, PermissionDenied, ValidationError
from vital_desktop.services import label_type_edits, label_types, labels


def test_old_names_are_re_exported_from_labels() -> None:
    assert labels.get_label_type is label_types.get_label_type
    assert labels.LabelType is label_types.LabelType


def test_demo_types_are_seed_data_in_the_store(small_site) -> None:
    lt = label_types.get_label_type(small_site.store, "classification")
    assert lt.classes()[0] == "inclusion" and "none" in lt.classes() and lt.class_field == "defect_type"
    assert lt.colors()["crack"] == "#c62828" and lt.ref == "classification@1.0.0" and lt.status == "published"
    assert [a.name for a in lt.attributes] == ["severity"] and lt.attributes[0].type == "choice"
    assert label_types.get_label_type(small_site.store, "localization").kind == "boxes"
    assert label_types.get_label_type(small_site.store, "anomaly").kind == "structured"
    with pytest.raises(ValidationError, match="defect_type"):
        label_types.validate_label_data(small_site.store, "classification", {"defect_type": "nonsense"})
    with pytest.raises(ValidationError, match="unknown label type 'nope'"):
        label_types.get_label_type(small_site.store, "nope")


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("classification", {"class": "é-ü"}, {"class": "other"}),
    ("multilabel", {"classes": ["é-ü", "b"]}, {"classes": ["é-ü", "é-ü"]}),
    ("boxes", {"boxes": [{"label": "b", "x": 0, "y": 0, "width": 2, "height": 3}]},
     {"boxes": [{"label": "b", "x": 0, "y": 0, "width": 0, "height": 3}]}),
    ("polygons", {"polygons": [{"label": "b", "points": [[0, 0], [1, 0], [1, 1]]}]},
     {"polygons": [{"label": "b", "points": [[0, 0], [1, 0]]}]}),
    ("points", {"points": [{"label": "b", "x": 1, "y": 2}]}, {"points": [{"label": "zz", "x": 1, "y": 2}]}),
])
def test_each_class_kind_derives_a_schema_that_checks_its_data(small_site, kind, good, bad) -> None:
    engineer = small_site.user("engineer")
    lt = label_type_edits.create_label_type(small_site.store, engineer,
                                            {"name": f"k-{kind}", "kind": kind, "classes": ["é-ü", "b"]})
    label_types.check_label_data(lt, good)
    with pytest.raises(ValidationError):
        label_types.check_label_data(lt, bad)


def test_text_number_and_structured_kinds(small_site) -> None:
    store, engineer = small_site.store, small_site.user("engineer")
    text = label_type_edits.create_label_type(store, engineer, {"name": "remark", "kind": "text"})
    label_types.check_label_data(text, {"text": "fine"})
    number = label_type_edits.create_label_type(store, engineer, {"name": "thickness", "kind": "number"})
    label_types.check_label_data(number, {"value": 1.5})
    schema = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
    own = label_type_edits.create_label_type(store, engineer, {"name": "check", "kind": "structured", "schema": schema})
    label_types.check_label_data(own, {"ok": True})
    with pytest.raises(ValidationError, match="ok"):
        label_types.check_label_data(own, {"ok": "yes"})


def test_draft_edit_publish_and_diff(small_site) -> None:
    store, engineer = small_site.store, small_site.user("engineer")
    draft = label_type_edits.create_label_type(store, engineer, {"name": "welds", "classes": ["pore", "crack"]},
                                               draft=True)
    assert draft.status == "draft"
    with pytest.raises(ValidationError, match="no published version"):
        label_types.get_label_type(store, "welds")
    label_type_edits.edit_draft(store, engineer, "welds", {"classes": ["pore", "crack", "spatter"]})
    published = label_type_edits.publish(store, engineer, "welds")
    assert published.classes() == ["pore", "crack", "spatter"] and published.version == "1.0.0"
    with pytest.raises(ConflictError, match="published and cannot be edited"):
        label_type_edits.edit_draft(store, engineer, "welds", {"classes": ["x", "y"]})
    actions = [h["action"] for h in label_type_edits.history(store, "welds")]
    assert actions == ["create", "edit_draft", "publish"]


def _bad_inputs(tmp_path) -> dict:
    return {
        "duplicate class": ({"name": "t1", "classes": ["a", "a"]}, "class 'a' is given twice"),
        "empty class name": ({"name": "t2", "classes": ["a", " "]}, "empty name"),
        "empty class list": ({"name": "t3", "classes": []}, "needs at least one class"),
        "name collision": ({"name": "classification", "classes": ["a"]}, "already exists"),
        "not a slug": ({"name": "Bad Name", "classes": ["a"]}, "must be a slug"),
        "unknown kind": ({"name": "t4", "kind": "video", "classes": ["a"]}, "unknown kind 'video'"),
        "invalid JSON Schema": ({"name": "t5", "kind": "structured", "schema": {"type": "object", "required": "x"}},
                                "not a valid JSON Schema"),
        "bad colour": ({"name": "t6", "classes": [{"name": "a", "color": "red"}]}, "#rrggbb"),
    }


@pytest.mark.parametrize("case", list(_bad_inputs(None)))
def test_bad_label_types_are_refused_and_the_store_is_unchanged(small_site, case) -> None:
    spec, message = _bad_inputs(None)[case]
    before = snapshot_tables(small_site.store)
    with pytest.raises((ValidationError, ConflictError), match=message):
        label_type_edits.create_label_type(small_site.store, small_site.user("engineer"), spec)
    assert snapshot_tables(small_site.store) == before


def test_inspectors_cannot_change_the_taxonomy(small_site) -> None:
    with pytest.raises(PermissionDenied):
        label_type_edits.create_label_type(small_site.store, small_site.user("inspector"),
                                           {"name": "mine", "classes": ["a", "b"]})


def test_label_data_failing_its_type_is_refused_by_the_write_path(small_site) -> None:
    store = small_site.store
    before = snapshot_tables(store)
    with pytest.raises(ValidationError, match="classification@1.0.0 label is not valid"):
        labels.set_label(store, actor=small_site.user("inspector"), sheet="Crystals", item_ref="INS-0001",
                         label_type="classification", label_data={"defect_type": "scratch"})
    assert snapshot_tables(store) == before


def test_every_label_records_its_label_type_version(small_site) -> None:
    store = small_site.store
    labels.set_label(store, actor=small_site.user("inspector"), sheet="Crystals", item_ref="INS-0001",
                     label_type="classification", label_data={"defect_type": "crack"})
    with store.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT label_type_version FROM canonical_labels").fetchone()
        hist = conn.exec_driver_sql("SELECT label_type_version FROM canonical_label_history").fetchone()
    assert row[0] == hist[0] == "1.0.0"
    assert json.loads(json.dumps(label_types.get_label_type(store, "classification", "1.0.0").to_dict()))

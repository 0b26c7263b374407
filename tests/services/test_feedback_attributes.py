"""IMPROVE feedback carries the attribute fields of the prediction's own label type (no demo fields).

A site label type `wear` (classes ok/worn) with a `condition` choice (a/b), a `depth` number
(0..10), a `sealed` boolean and a `remark` text: feedback on a prediction of a model for it
takes exactly those fields, typed, through the service and the `vital feedback add --attr`
command; a bad name or value is refused by name and leaves the store as it was.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORDS, snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.services import feedback, label_type_edits, labels
from vital_desktop.store.bulk import insert_arrow
from vital_desktop.store.models import ModelRow, Sheet, SheetItem

WEAR = {"name": "wear", "title": "Wear", "kind": "classification", "classes": ["ok", "worn"],
        "attributes": [{"name": "condition", "title": "Surface condition", "type": "choice", "choices": ["a", "b"]},
                       {"name": "depth", "title": "Depth (mm)", "type": "number", "minimum": 0, "maximum": 10},
                       {"name": "sealed", "type": "boolean"}, {"name": "remark", "type": "text"}]}


def log_wear_predictions(store, actor, n: int = 4) -> list[str]:
    """The `wear` label type, a classifier whose card names it, and `n` predictions of it ("ok")."""
    label_type_edits.create_label_type(store, actor, WEAR)
    model_id = new_id()
    with store.session() as s:
        sheet_id = s.query(Sheet).first().id
        refs = list(s.scalars(sa.select(SheetItem.item_ref).where(SheetItem.sheet_id == sheet_id)
                              .order_by(SheetItem.item_ref).limit(n)))
        s.add(ModelRow(id=model_id, name="wear-clf", version=1, kind="onnx_classifier", path="/x.onnx",
                       file_sha256="0" * 64, size_bytes=1, classes=["ok", "worn"], created_by=actor.username,
                       card={"label_type": "wear"}))
        rows = [{"id": new_id(), "model_id": model_id, "model_name": "wear-clf", "model_version": 1,
                 "kind": "onnx_classifier", "sheet_id": sheet_id, "item_ref": ref, "output": "{}",
                 "predicted_class": "ok", "confidence": 0.9, "latency_ms": 5.0, "image_width": 32, "image_height": 32,
                 "created_by": actor.username, "created_at": utcnow()} for ref in refs]
        insert_arrow(s, "predictions", pa.Table.from_pylist(rows), casts={"output": "JSON"})
    return [r["id"] for r in rows]


@pytest.fixture
def wear(small_site):
    return small_site, log_wear_predictions(small_site.store, small_site.user("engineer"))


def test_feedback_takes_the_label_types_own_fields_typed_and_accepts_them_into_the_label(wear) -> None:
    site, predictions = wear
    store = site.store
    fields = feedback.prediction_fields(store, predictions[:1])
    assert fields[predictions[0]][0] == "wear"
    assert [a.name for a in fields[predictions[0]][1]] == ["condition", "depth", "sealed", "remark"]
    item, _ = feedback.add_feedback(store, actor=site.user("inspector"), prediction_id=predictions[0],
                                    corrected_class="worn",
                                    attributes={"condition": "b", "depth": "2.5", "sealed": "no", "remark": None})
    assert item.corrected_label == {"class": "worn", "condition": "b", "depth": 2.5, "sealed": False}
    result, _ = feedback.accept_feedback(store, actor=site.user("engineer"), feedback_id=item.id)
    assert result.label_outcome == "created"
    label = labels.get_label(store, sheet=site.sheet, item_ref=item.item_ref, label_type="wear")
    assert label.label_data == {"class": "worn", "condition": "b", "depth": 2.5, "sealed": False}


@pytest.mark.parametrize(("attributes", "message"), [
    ({"severity": "major"}, r"label type wear has no attribute field 'severity'; its attribute fields: condition, "
                            r"depth, sealed, remark"),
    ({"condition": "c"}, r"Surface condition \(condition\) must be one of a, b; got 'c'"),
    ({"depth": "deep"}, r"Depth \(mm\) \(depth\) must be a finite number"),
    ({"depth": "nan"}, r"must be a finite number"),
    ({"depth": 11}, r"must be between 0(\.0)? and 10(\.0)?"),
    ({"sealed": "maybe"}, r"sealed \(sealed\) is yes or no"),
    ({"remark": 3}, r"remark \(remark\) is text"),
])
def test_a_bad_attribute_is_refused_by_name_and_writes_nothing(wear, attributes, message) -> None:
    site, predictions = wear
    before = snapshot_tables(site.store)
    with pytest.raises(ValidationError, match=message):
        feedback.add_feedback(site.store, actor=site.user("inspector"), prediction_id=predictions[1],
                              corrected_class="worn", attributes=attributes)
    assert snapshot_tables(site.store) == before


def test_a_required_field_must_be_given(small_site) -> None:
    engineer = small_site.user("engineer")
    spec = {**WEAR, "name": "wear", "attributes": [{"name": "condition", "type": "choice", "choices": ["a", "b"],
                                                    "required": True}]}
    label_type_edits.create_label_type(small_site.store, engineer, spec)
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="label type wear requires the attribute field.* condition"):
        feedback.add_feedback(small_site.store, actor=engineer, sheet=small_site.sheet, item_ref="INS-0001",
                              corrected_class="worn", label_type="wear")
    assert snapshot_tables(small_site.store) == before


def test_cli_feedback_add_takes_attr_pairs_and_refuses_unknown_ones(wear, monkeypatch, capsys) -> None:
    from vital_desktop.cli import main

    from vital_desktop.store import open_store

    site, predictions = wear
    site.store.close()  # the command opens the site itself

    def snapshot() -> dict:
        with open_store(site.home) as store:
            return snapshot_tables(store)

    def run(*args: str) -> tuple[int, dict, str]:
        monkeypatch.setenv("VITAL_USER", "inspector")
        monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["inspector"])
        code = main(["--home", str(site.home), "--json", "feedback", "add", *args])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if out.strip() else {}), err

    code, out, err = run("--prediction", predictions[2], "--correct", "worn", "--attr", "condition=a",
                         "--attr", "depth=3", "--attr", "sealed=yes")
    assert code == 0, err
    assert out["corrected_label"] == {"class": "worn", "condition": "a", "depth": 3, "sealed": True}
    before = snapshot()
    code, out, err = run("--prediction", predictions[3], "--correct", "worn", "--attr", "colour=red")
    assert code != 0 and "no attribute field 'colour'" in err and "condition, depth, sealed, remark" in err
    assert "Traceback" not in err
    code, out, err = run("--prediction", predictions[3], "--correct", "worn", "--attr", "condition")
    assert code != 0 and "--attr needs NAME=VALUE" in err
    code, out, err = run("--prediction", predictions[3], "--correct", "worn", "--severity", "major")
    assert code != 0 and "no attribute field 'severity'" in err  # the deprecated alias, checked the same way
    assert snapshot() == before

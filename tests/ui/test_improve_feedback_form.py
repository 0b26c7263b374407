"""The IMPROVE feedback form asks for the attribute fields of the selected prediction's label type.

A site label type `wear` (not the demo's): its `condition` choice becomes a combo labelled with
the field's title, its number a spin box, its boolean a check box, its text a line edit; a
prediction whose model has no label type shows no attribute rows; the value picked is stored.
"""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit

from tests.services.test_feedback_attributes import log_wear_predictions
from tests.ui.conftest import settle


def _row_labels(page) -> list[str]:
    form = page.attribute_rows.form
    return [form.labelForField(w).text() for w in page.attribute_rows.widgets.values()]


def test_feedback_form_rows_follow_the_label_type_and_the_value_is_stored(qtbot, window, store, engineer):
    from vital_desktop.core.ids import new_id
    from vital_desktop.services import feedback
    from vital_desktop.store.models import ModelRow, Prediction

    predictions = log_wear_predictions(store, engineer, n=2)
    with store.session() as s:  # a prediction of a model that names no label type: no attribute rows
        orphan = s.get(Prediction, predictions[1])
        s.add(ModelRow(id=(model_id := new_id()), name="plain", version=1, kind="onnx_classifier", path="/y.onnx",
                       file_sha256="1" * 64, size_bytes=1, classes=["p", "q"], created_by="alice", card={}))
        orphan.model_id = model_id
        orphan.model_name = "plain"
    window.context.navigate("improve")
    settle(qtbot, window)
    page = window.pages["improve"]
    page.reload_predictions()
    settle(qtbot, window)

    page.prediction_pick.setCurrentIndex(page.prediction_pick.findData(predictions[0]))
    widgets = page.attribute_rows.widgets
    assert list(widgets) == ["condition", "depth", "sealed", "remark"]
    assert _row_labels(page) == ["Surface condition", "Depth (mm)", "sealed", "remark"]
    assert [type(w) for w in widgets.values()] == [QComboBox, QDoubleSpinBox, QCheckBox, QLineEdit]
    combo = widgets["condition"]
    assert [combo.itemText(i) for i in range(combo.count())] == ["—", "a", "b"]

    page.prediction_pick.setCurrentIndex(page.prediction_pick.findData(predictions[1]))
    assert page.attribute_rows.widgets == {}  # no label type known: no rows

    page.prediction_pick.setCurrentIndex(page.prediction_pick.findData(predictions[0]))
    combo = page.attribute_rows.widgets["condition"]
    combo.setCurrentIndex(combo.findData("b"))
    page.attribute_rows.widgets["depth"].setValue(1.5)
    page.corrected.setCurrentText("worn")
    page.add_feedback()
    qtbot.waitUntil(lambda: "waits for expert review" in page.flag_message.text(), timeout=10_000)
    settle(qtbot, window)
    [item] = feedback.list_feedback(store)
    assert item.corrected_label == {"class": "worn", "condition": "b", "depth": 1.5}
    assert page.attribute_rows.values() == {}  # the form is back to "not given"

"""The labeling tool's label panel fits a 1280x720 window whatever the label type's titles: rows
wrap, long titles are cut with "…" and shown whole in their tooltip, nothing scrolls sideways
(pytest-qt, offscreen, a site label type made here: nothing assumes the demo's)."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QScrollArea

from tests.ui.conftest import SHEET, settle
from vital_desktop.services import label_type_edits
from vital_desktop.ui.widgets import ElidedLabel

LONG = "Measured maximum ambient dose-equivalent rate at the controlled-area boundary (µSv/h)"
TYPE = {
    "name": "boundary_survey", "title": "Controlled-area boundary survey with a rather long title indeed",
    "classes": ["within_limits", "investigate", "exceeds_limits"],
    "attributes": [
        {"name": "dose_rate", "title": LONG, "type": "number", "minimum": 0, "maximum": 1000},
        {"name": "instrument", "title": "Survey instrument serial number and calibration certificate", "type": "text"},
        {"name": "posted", "title": "Boundary signs and barriers posted as the site licence requires",
         "type": "boolean"},
        {"name": "area", "title": "Area classification under the local rules", "type": "choice",
         "choices": ["supervised", "controlled"]},
        {"name": "notes", "title": "Surveyor", "type": "text"},
    ],
}


def test_long_field_titles_wrap_and_elide_without_a_sideways_scroll(qtbot, window, store, engineer) -> None:
    label_type_edits.create_label_type(store, engineer, TYPE)
    window.resize(1280, 720)
    window.go("canonical", sheet=SHEET, label_type="boundary_survey")
    tool = window.pages["canonical"]
    qtbot.waitUntil(lambda: tool.ready and tool.form is not None
                    and tool.form.label_type.name == "boundary_survey", timeout=10_000)
    settle(qtbot, window)
    qtbot.wait(50)  # let the layouts settle at the window's size
    scroll = tool.side.parentWidget().parentWidget()
    assert isinstance(scroll, QScrollArea)
    assert scroll.horizontalScrollBar().maximum() == 0, (tool.side.minimumSizeHint().width(),
                                                          scroll.viewport().width())
    assert tool.side.width() <= scroll.viewport().width()
    titles = {label.full_text(): label for label in tool.form.findChildren(ElidedLabel)}
    long_title = titles[f"{LONG} (optional)"]
    assert long_title.is_elided() and long_title.toolTip().startswith(LONG)
    assert long_title.text().startswith("Measured maximum") and long_title.text().endswith("…")
    assert long_title.width() <= scroll.viewport().width()
    short = titles["Surveyor (optional)"]  # a short title is shown whole, beside or above its field
    assert short.isVisible() and not short.is_elided() and short.text() == "Surveyor (optional)"
    assert short.width() >= short.fontMetrics().horizontalAdvance(short.text())
    for label in titles.values():
        assert label.isVisible() and label.width() > 40 and label.text(), label.full_text()
    # every field is inside the panel, none cut at its right edge
    for name, field in tool.form.fields.items():
        right = field.mapTo(tool.side, field.rect().topRight()).x()
        assert right <= scroll.viewport().width(), (name, right, scroll.viewport().width())
    # the form's frame title is cut too, whole in its tooltip
    assert tool.side.form_box.toolTip() == f"Label — {TYPE['title']}"
    assert tool.side.form_box.title().endswith("…")
    assert tool.form.layout().rowWrapPolicy() == QFormLayout.RowWrapPolicy.WrapLongRows

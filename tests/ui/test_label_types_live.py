"""The labeling tool and label types as site data: the type a sheet opens with comes from the
sheet's own labels (no demo name assumed), and a label-type change made elsewhere (another page,
the CLI over the bridge) reaches an open tool without losing the item or the unsaved work."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from tests.ui.conftest import SHEET
from vital_desktop.core.changes import Changes
from vital_desktop.services import label_queries, taxonomy
from vital_desktop.services import labels as label_service


def test_a_sheet_opens_with_the_label_type_its_labels_have(qtbot, window, store, engineer):
    # No labels anywhere: the site's first published type by name (whatever the site calls it).
    first = label_queries.default_label_type(store, sheet=SHEET)
    assert first == sorted(label_service.label_types(store))[0]
    # Labels of a classification type that is not first by name: that type wins, for the sheet
    # and for the tool opened with no type asked for.
    types = label_service.label_types(store)
    chosen = [n for n, t in sorted(types.items()) if t.kind == "classification" and t.classes() and n != first][-1]
    lt = types[chosen]
    label_service.set_label(store, actor=engineer, sheet=SHEET, item_ref="INS-00002", label_type=chosen,
                            label_data={lt.class_field: lt.classes()[0]})
    assert label_queries.default_label_type(store, sheet=SHEET) == chosen
    window.go("canonical")
    tool = window.pages["canonical"]
    qtbot.waitUntil(lambda: tool.ready, timeout=10_000)
    assert tool.label_type == chosen and tool.form.label_type.name == chosen
    assert tool.type_combo.currentData() == chosen


def test_a_label_type_edited_elsewhere_reloads_keeping_item_and_unsaved_work(qtbot, window, store, engineer):
    window.go("canonical", label_type="classification")
    tool = window.pages["canonical"]
    qtbot.waitUntil(lambda: tool.ready and tool.labels_ready, timeout=10_000)
    item, before = tool.item.item_ref, tool.form.label_type
    tool.pick_class(1)  # unsaved: the second class
    picked = tool.form.value()
    assert picked
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    tool.notes.setFocus()
    tool.notes.setText("half typed")
    # Another page (or `vital label types add-class` handed over the bridge) adds a class.
    _impact, changes = taxonomy.apply(store, engineer, "classification", "add_class", name="chipped_corner")
    assert changes.label_types
    window.context.announce(Changes(label_types=True))
    qtbot.waitUntil(lambda: tool.form.label_type.version != before.version, timeout=10_000)
    assert "chipped_corner" in [c.name for c in tool.form.classes]
    assert tool.item.item_ref == item and tool.form.value() == picked  # same item, the choice kept
    assert tool.notes.text() == "half typed" and QApplication.focusWidget() is tool.notes
    assert tool.form.label_type.version in tool.message.text()
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)

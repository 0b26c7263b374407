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


def test_a_label_whose_image_changed_is_confirmed_by_key(qtbot, window, store, engineer, tmp_path):
    """A rescan flags the label of a changed file; the tool says so, and Ctrl+K confirms it holds."""
    from PySide6.QtCore import Qt

    from tests.formats.test_folder_sheets import _folder, _png
    from vital_desktop.services import sheet_rescan, sheets

    root = _folder(tmp_path / "shots")
    sheets.import_sheet(store, actor=engineer, name="Shots", metadata_path=None, image_root=root,
                        class_label_type="classification")
    _png(root / "crack" / "a.png", 200)
    report, _ = sheet_rescan.rescan_sheet(store, actor=engineer, sheet="Shots")
    assert report.flagged_labels == 1
    window.go("canonical", sheet="Shots", item="crack/a.png")
    tool = window.pages["canonical"]
    qtbot.waitUntil(lambda: tool.ready and tool.labels_ready and tool.item.item_ref == "crack/a.png", timeout=10_000)
    assert tool.label_type == "classification"  # the type the sheet's labels have
    qtbot.waitUntil(lambda: tool.side.changed_box.isVisible(), timeout=5000)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    tool.image_view.setFocus()
    qtbot.keyClick(tool.image_view, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: label_service.get_label(store, sheet="Shots", item_ref="crack/a.png",
                                                    label_type="classification").review_state == "ok", timeout=10_000)
    label = label_service.get_label(store, sheet="Shots", item_ref="crack/a.png", label_type="classification")
    assert label.version == 2 and label.label_data == {"defect_type": "crack"}
    qtbot.waitUntil(lambda: not tool.side.changed_box.isVisible() and tool.labels_ready, timeout=10_000)
    assert tool.item.item_ref == "crack/a.png" and tool.image_view.hasFocus()
    # A label that is not flagged: Ctrl+K explains and writes nothing.
    qtbot.keyClick(tool.image_view, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert "needs confirming" in tool.message.text()
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)

"""The Taxonomy page on a real store: create a label type, preview and apply a rename (labels
relabelled through the write path), diff and history; a bad change shows its reason."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.conftest import snapshot_tables
from tests.ui.conftest import SHEET
from vital_desktop.services import label_types, labels


def _select(list_widget, text: str) -> None:
    for row in range(list_widget.count()):
        item = list_widget.item(row)
        data = item.data(Qt.ItemDataRole.UserRole)
        name = data["name"] if isinstance(data, dict) else data
        if name == text:
            list_widget.setCurrentRow(row)
            item.setSelected(True)
            return
    raise AssertionError(f"{text!r} not listed")


def test_create_preview_apply_rename_diff_and_history(qtbot, window, store, engineer) -> None:
    window.go("taxonomy")
    page = window.pages["taxonomy"]
    qtbot.waitUntil(lambda: page.type_list.count() > 0, timeout=10000)
    page.new_name.setText("parts")
    page.new_classes.setText("bolt,nut,ワッシャー")
    qtbot.keyClick(page.new_classes, Qt.Key.Key_Return)  # Enter in the form creates, as the button does
    qtbot.waitUntil(lambda: "created" in page.message.text() or bool(page.impact.text()), timeout=20000)
    assert "created parts@1.0.0" in page.message.text(), page.impact.text()
    qtbot.waitUntil(lambda: page.current is not None and page.current.name == "parts", timeout=20000)
    assert [page.class_list.item(r).text().split()[1] for r in range(3)] == ["bolt", "nut", "ワッシャー"]
    item, _ = labels.set_label(store, actor=engineer, sheet=SHEET, item_ref="INS-00001", label_type="parts",
                            label_data={"class": "nut"})
    assert item.label.version == 1

    _select(page.class_list, "nut")
    page.verb.setCurrentText("Rename")
    page.verb_arg.setText("hex_nut")
    before = snapshot_tables(store)
    qtbot.keyClick(page.verb_arg, Qt.Key.Key_Return)  # Enter previews, as the Preview button does
    qtbot.waitUntil(lambda: page.apply_button.isEnabled(), timeout=10000)
    assert "1 label(s) relabelled" in page.impact.text() and snapshot_tables(store) == before
    page.apply_button.click()
    qtbot.waitUntil(lambda: page.current is not None and page.current.version == "2.0.0", timeout=10000)
    assert label_types.get_label_type(store, "parts").classes() == ["bolt", "hex_nut", "ワッシャー"]
    label = labels.get_label(store, sheet=SHEET, item_ref="INS-00001", label_type="parts")
    assert label.label_data == {"class": "hex_nut"} and label.version == 2
    qtbot.waitUntil(lambda: page.history.rowCount() == 2, timeout=10000)
    assert page.history.item(0, 2).text() == "rename_class"
    page.show_diff()
    qtbot.waitUntil(lambda: "hex_nut" in page.diff_text.toPlainText(), timeout=10000)

    # Renaming onto an existing class is refused with the reason; nothing is written.
    _select(page.class_list, "bolt")
    page.verb_arg.setText("hex_nut")
    before = snapshot_tables(store)
    page.preview_button.click()
    qtbot.waitUntil(lambda: "already has a class" in page.impact.text(), timeout=10000)
    assert not page.apply_button.isEnabled() and snapshot_tables(store) == before

"""Keyboard first: a whole labeling and review session driven by key presses alone.

Also: a 50-class taxonomy labels by keyboard (digits for the first ten, type-to-filter for the
rest); messages name fields by their titles; the edit dialog keeps the expert's text on a
schema error; the Mode A counters agree with the progress block.
"""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit

from tests.ui.conftest import SHEET
from tests.ui.test_canvas import add_label_types
from vital_desktop.services import generate as generate_service
from vital_desktop.services import label_types as label_type_service
from vital_desktop.services import labels as label_service
from vital_desktop.services import review as review_service

WORDS = ("amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "jade", "kelp",
         "lagoon", "marble", "nickel", "onyx", "pewter", "quartz", "russet", "sienna", "topaz", "umber", "violet",
         "walnut", "xenon", "yarrow", "zircon")


def fifty_classes() -> list[str]:
    names = [f"{w}_{i}" for i, w in enumerate(WORDS)] + [f"{w}_{i + len(WORDS)}" for i, w in enumerate(WORDS[:23])]
    return [*names, "größe_ß"]  # unicode names are classes like any other


@pytest.fixture
def wide_taxonomy(monkeypatch, store, engineer):
    """A 50-class classification type (class field `class`, as `--classes` makes it)."""
    names = fifty_classes()

    def build():
        spec = {"title": "Texture families", "class_field": "class", "schema": {
            "type": "object", "additionalProperties": False, "required": ["class"],
            "properties": {"class": {"type": "string", "enum": names, "title": "Texture family"}}}}
        return label_type_service.from_schema("textures", spec)

    add_label_types(monkeypatch, store, engineer, [{"name": "textures", "title": "Texture families",
                                                    "kind": "classification", "classes": names, "build": build}])
    return names


def activate(qtbot, window) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def press(qtbot, window, *keys, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Key presses as the expert types them: into whatever widget has the keyboard focus."""
    for key in keys:
        target = QApplication.focusWidget() or window
        qtbot.keyClick(target, key, modifier)


def type_text(qtbot, window, text: str) -> None:
    for char in text:
        target = QApplication.focusWidget() or window
        qtbot.keyClicks(target, char)


def test_fifty_classes_by_digits_and_type_to_filter(qtbot, window, store, wide_taxonomy):
    names = wide_taxonomy
    window.go("canonical", label_type="classification")  # the demo's type (a fresh site has no default)
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = window.pages["canonical"]
    tool.set_label_type("textures")
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    activate(qtbot, window)
    chooser = tool.form.class_picker
    assert chooser.filterable and chooser.list.count() == 50 and not chooser.filter.isHidden()
    press(qtbot, window, Qt.Key.Key_0)  # the tenth class
    assert tool.form.value() == {"class": names[9]}
    press(qtbot, window, Qt.Key.Key_3)
    assert tool.form.value() == {"class": names[2]}
    type_text(qtbot, window, "zirc")  # typed on the canvas: the filter takes over
    assert chooser.filter.hasFocus() and chooser.filter.text() == "zirc"
    assert [names[i] for i in chooser.matches()] == ["zircon_25"]
    press(qtbot, window, Qt.Key.Key_Return)  # picks the match and hands the keyboard back; no save
    assert tool.form.value() == {"class": "zircon_25"} and tool.image_view.hasFocus()
    assert chooser.filter.text() == "" and len(chooser.matches()) == 50
    type_text(qtbot, window, "umber")
    press(qtbot, window, Qt.Key.Key_Down)  # the second match
    press(qtbot, window, Qt.Key.Key_Return)
    assert tool.form.value() == {"class": "umber_46"}
    type_text(qtbot, window, "gr")  # (QTest types ASCII only)
    press(qtbot, window, Qt.Key.Key_Escape)  # gives up: the choice stays, the tool stays open
    assert tool.form.value() == {"class": "umber_46"} and window.current_stage == "canonical"
    item = tool.item.item_ref
    press(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref != item and not tool.saving, timeout=10_000)
    stored = label_service.get_label(store, sheet=SHEET, item_ref=item, label_type="textures")
    assert stored is not None and stored.label_data == {"class": "umber_46"}
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)


def test_a_full_labeling_and_review_session_by_keys_alone(qtbot, window, store, engineer):
    window.go("canonical", label_type="classification")  # the demo's type (a fresh site has no default)
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = window.pages["canonical"]
    activate(qtbot, window)
    qtbot.waitUntil(lambda: tool.labels_ready, timeout=5000)

    # Mode B. Enter without a class names the field by its title, not its internal name.
    first = tool.item.item_ref
    press(qtbot, window, Qt.Key.Key_Return)
    assert "Choose Defect type first" in tool.message.text() and tool.item.item_ref == first
    # A class, a note typed in its field, Enter: saved, and the keyboard is back on the item.
    press(qtbot, window, Qt.Key.Key_1)
    tool.notes.setFocus()  # the expert clicks into the notes field
    type_text(qtbot, window, "edge chip 2")
    press(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref != first and not tool.saving, timeout=10_000)
    assert not isinstance(QApplication.focusWidget(), QLineEdit) and tool.image_view.hasFocus()
    second = tool.item.item_ref
    press(qtbot, window, Qt.Key.Key_2)  # a digit picks a class again (not typed into the notes)
    assert tool.form.value()["defect_type"] == "crack" and tool.notes.text() == ""
    press(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref != second and not tool.saving, timeout=10_000)
    stored = label_service.get_label(store, sheet=SHEET, item_ref=first, label_type="classification")
    assert stored.label_data["defect_type"] == "inclusion" and stored.notes == "edge chip 2"
    press(qtbot, window, Qt.Key.Key_Z, modifier=Qt.KeyboardModifier.ControlModifier)  # undo the second save
    qtbot.waitUntil(lambda: label_service.get_label(store, sheet=SHEET, item_ref=second,
                                                    label_type="classification") is None, timeout=10_000)
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)

    # Mode A on a training sheet made from the same sheet.
    generate_service.generate_training_sheet(store, actor=engineer, sheet=SHEET, name="keys", ai_mode="none",
                                             template="Defect Classification - Visual Inspection")
    window.go("label", training_sheet="keys")
    page = window.pages["label"]
    qtbot.waitUntil(lambda: page.current is not None and page.current.name == "keys" and page.pair is not None
                    and not page.busy, timeout=10_000)
    activate(qtbot, window)

    def counters_agree() -> bool:
        total = int(page.position_label.text().split("/")[1].split()[0].replace(",", ""))
        return page.summary is not None and total == page.summary.needs_review

    qtbot.waitUntil(counters_agree, timeout=5000)
    assert page.position_label.text().startswith("1 / ")
    assert "none yet" in page.canonical.text()  # beside the AI answer: the item's canonical label now

    # E: an answer that breaks the schema is refused in the dialog, which keeps the text.
    target = page.pair.item_ref
    press(qtbot, window, Qt.Key.Key_E)
    dialog = page.edit_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    bad = json.dumps({"defect_type": "not-a-class"})
    dialog.edit.setPlainText(bad)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.edit, timeout=5000)  # the dialog has the keys
    press(qtbot, window, Qt.Key.Key_Return, modifier=Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: dialog.ok.isEnabled() and bool(dialog.message.text()), timeout=10_000)
    assert dialog.isVisible() and dialog.edit.toPlainText() == bad and "not-a-class" in dialog.message.text()
    dialog.edit.setPlainText(json.dumps({"defect_type": "crack"}))
    press(qtbot, window, Qt.Key.Key_Return, modifier=Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: review_service.find_pair(store, training_sheet="keys", item_ref=target).status
                    == "labeled" and not page.busy, timeout=10_000)
    activate(qtbot, window)
    qtbot.waitUntil(counters_agree, timeout=5000)

    # Shift+R: type a reason, Enter rejects; the keyboard returns to the pair, so F flags the next.
    rejected = page.pair.item_ref
    press(qtbot, window, Qt.Key.Key_R, modifier=Qt.KeyboardModifier.ShiftModifier)
    assert page.reason.hasFocus()
    type_text(qtbot, window, "glare on the face")
    press(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: review_service.find_pair(store, training_sheet="keys", item_ref=rejected).status
                    == "rejected" and not page.busy, timeout=10_000)
    assert not page.reason.hasFocus() and page.reason.text() == ""
    assert review_service.find_pair(store, training_sheet="keys", item_ref=rejected).review_reason == \
        "glare on the face"
    flagged = page.pair.item_ref
    assert flagged != rejected
    press(qtbot, window, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: review_service.find_pair(store, training_sheet="keys", item_ref=flagged).status
                    == "flagged" and not page.busy, timeout=10_000)
    assert page.reason.text() == ""  # the F was an action, not a letter in the reason field

    # A approves with the answer as it is after a pre-label; here there is none, so it is refused
    # with a message and the keyboard stays on the pair.
    approved = page.pair.item_ref
    press(qtbot, window, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: not page.busy, timeout=10_000)
    assert page.message.text() and page.pair.item_ref == approved and page.image_view.hasFocus()
    qtbot.waitUntil(counters_agree, timeout=5000)
    summary = generate_service.summary(store, "keys")
    assert summary.rejected == 1 and summary.flagged == 1 and summary.approved_in_review == 1
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)


def test_label_next_suggestions_set_the_order_enter_follows(qtbot, window, store, monkeypatch):
    from vital_desktop.services import assist

    def ranked(store, *, actor, sheet, label_type, strategy, count, progress=None, **_):
        return [assist.NextItem(ref, "", rank, 1.0 - rank / 10, None, None, None)
                for rank, ref in enumerate(("INS-00012", "INS-00003", "INS-00027"))]

    monkeypatch.setattr(assist, "label_next", ranked)  # the ranking itself is tested with the classifier
    window.go("canonical", label_type="classification")  # the demo's type (a fresh site has no default)
    tool = window.pages["canonical"]
    qtbot.waitUntil(lambda: tool.ready, timeout=10_000)
    activate(qtbot, window)
    qtbot.mouseClick(tool.suggest_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tool.item.item_ref == "INS-00012" and tool.labels_ready, timeout=10_000)
    press(qtbot, window, Qt.Key.Key_1)
    press(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref == "INS-00003", timeout=10_000)
    qtbot.waitUntil(lambda: not tool.saving and tool.labels_ready, timeout=10_000)
    press(qtbot, window, Qt.Key.Key_2)
    press(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref == "INS-00027", timeout=10_000)
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)
    assert label_service.get_label(store, sheet=SHEET, item_ref="INS-00003",
                                   label_type="classification").label_data["defect_type"] == "crack"

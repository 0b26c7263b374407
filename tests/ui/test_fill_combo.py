"""The shared combo filler used by the Generate dialog and the template editor."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

from vital_desktop.ui.widgets import fill_combo


def test_fill_combo_replaces_entries_silently_and_takes_the_first_preference_that_matches(qtbot) -> None:
    combo = QComboBox()
    qtbot.addWidget(combo)
    combo.addItems(["old one", "old two"])
    changes: list[int] = []
    combo.currentIndexChanged.connect(changes.append)
    entries = [("alpha 1.0", {"ref": "alpha@1.0", "name": "alpha"}), ("beta 2.0", {"ref": "beta@2.0", "name": "beta"}),
               ("beta 2.1", {"ref": "beta@2.1", "name": "beta"})]
    fill_combo(combo, entries, [lambda d: d["ref"] == "beta@9.9", lambda d: d["name"] == "beta"])
    assert [combo.itemText(i) for i in range(combo.count())] == ["alpha 1.0", "beta 2.0", "beta 2.1"]
    assert combo.currentData()["ref"] == "beta@2.0"  # the exact ref is gone: the first of the same name
    fill_combo(combo, entries, [lambda d: d["ref"] == "beta@2.1", lambda d: d["name"] == "beta"])
    assert combo.currentData()["ref"] == "beta@2.1"
    fill_combo(combo, entries, [lambda d: d["name"] == "gamma"])
    assert combo.currentIndex() == 0  # nothing preferred is offered: the first entry
    fill_combo(combo, [])
    assert combo.count() == 0 and combo.currentIndex() == -1
    assert changes == []  # filling emits no index changes (the caller refreshes once)

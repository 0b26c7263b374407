"""GENERATE: the trial-run field, and the refusal of a no-evidence image template, in the dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.ui.conftest import settle
from vital_desktop.services import generate as generate_service


def test_the_dialog_refuses_an_image_template_without_evidence_and_runs_a_trial(qtbot, window, store):
    window.go("generate")
    page = window.pages["generate"]
    settle(qtbot, window)
    row = next(i for i, t in enumerate(page.templates) if t.label_type == "classification")
    page.table.selectRow(row)
    dialog = page.open_generate()
    settle(qtbot, window)
    # This site has no classifier: the language model would only guess what the image shows.
    dialog.ai_mode.setCurrentIndex(dialog.ai_mode.findData("llm"))
    settle(qtbot, window)
    assert dialog.refusal.isVisibleTo(dialog) and "reads text only" in dialog.refusal.text()
    assert not dialog.generate_button.isEnabled()
    dialog.ai_mode.setCurrentIndex(dialog.ai_mode.findData("none"))
    settle(qtbot, window)
    assert not dialog.refusal.isVisibleTo(dialog) and dialog.generate_button.isEnabled()
    # A trial run of five items: the training sheet is partial, Resume is offered.
    dialog.limit.setValue(5)
    assert "5 items" in dialog.estimate.text() or not dialog.estimate.isVisibleTo(dialog)
    name = dialog.name.text()
    qtbot.mouseClick(dialog.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.current_stage == "label", timeout=20_000)
    settle(qtbot, window)
    info = generate_service.get_training_sheet(store, name)
    assert info.status == "partial" and generate_service.summary(store, name).generated == 5
    window.go("generate")
    settle(qtbot, window)
    page.poll_generation()
    assert not page.progress_card.isVisibleTo(page)  # nothing running now
    assert any(page.resume_table.item(r, 0).text() == name for r in range(page.resume_table.rowCount()))

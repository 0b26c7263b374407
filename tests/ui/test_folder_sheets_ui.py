"""DATA page: a sheet from a bare folder in the Create Sheet wizard, and the Rescan button."""

from __future__ import annotations

from pathlib import Path

from tests.ui.conftest import settle


def _images(folder: Path, n: int) -> None:
    from PIL import Image

    for i in range(n):
        (folder / ("crack" if i % 2 else "none")).mkdir(parents=True, exist_ok=True)
        Image.new("L", (16, 16), 30 * i).save(folder / ("crack" if i % 2 else "none") / f"p{i}.png")


def test_folder_sheet_from_the_wizard_then_rescan_with_progress(qtbot, window, tmp_path):
    folder = tmp_path / "shots"
    _images(folder, 4)
    data = window.pages["data"]
    wizard = data.open_wizard(folder=str(folder))
    wizard.metadata_page.folder_only.setChecked(True)
    wizard.metadata_page.name_edit.setText("Shots")
    assert wizard.metadata_page.isComplete()
    wizard.next()
    assert wizard.currentId() == wizard.FOLDER
    wizard.folder_page.class_type_edit.setText("classification")
    wizard.next()
    assert wizard.preview_page.table.rowCount() == 4 and "4 images" in wizard.preview_page.summary.text()
    wizard.next()  # commit: the import runs in the background
    qtbot.waitUntil(lambda: wizard.import_page.done, timeout=20_000)
    assert wizard.created_sheet == "Shots"
    wizard.accept()
    settle(qtbot, window)
    assert data.current.name == "Shots" and data.current.item_count == 4
    assert data.rescan_button.isEnabled()

    _images(folder, 6)  # two new files
    data.rescan_button.click()
    assert not data.rescan_button.isEnabled() and data.rescan_job is not None
    qtbot.waitUntil(lambda: data.rescan_job is None, timeout=20_000)
    settle(qtbot, window)
    assert "2 new" in data.rescan_status.text()
    assert data.rescan_button.isEnabled()
    assert data.current.item_count == 6

"""The Create Sheet wizard's page for documents and telemetry series (items that are not images).

The first wizard page offers every kind in `services.item_kinds.ITEM_KINDS`; for a kind other
than images this page asks where the files are (and, for one telemetry file, which column
groups its rows into items). `IMPORTERS` maps a kind to the service call that imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QFormLayout, QLineEdit, QPushButton, QWizardPage

from vital_desktop.services import item_import
from vital_desktop.services.item_kinds import DOCUMENT, TELEMETRY
from vital_desktop.ui.widgets import muted_label


def _documents(op: Any, page: ItemSourcePage, common: dict) -> Any:
    return item_import.import_documents(op.store, actor=op.actor, progress=op.progress,
                                        folder=page.path_edit.text(), **common)


def _telemetry(op: Any, page: ItemSourcePage, common: dict) -> Any:
    return item_import.import_telemetry(op.store, actor=op.actor, progress=op.progress, path=page.path_edit.text(),
                                        group_by=page.group_edit.text().strip() or None,
                                        time_column=page.time_edit.text().strip() or None, **common)


#: item kind → import call run in the worker (op, page, common arguments) → (report, changes)
IMPORTERS: dict[str, Callable[[Any, ItemSourcePage, dict], Any]] = {DOCUMENT: _documents, TELEMETRY: _telemetry}

_HELP = {
    DOCUMENT: ("Document folder", "Every PDF, .txt and .md file under the folder is an item; its text is extracted "
               "(page count and warnings kept) and stored for review and prompts. Files stay where they are."),
    TELEMETRY: ("Telemetry folder or file", "A folder with one CSV/Parquet file per item, or one file whose rows are "
                "grouped into items by a key column. Numeric columns become the plotted channels."),
}


class ItemSourcePage(QWizardPage):
    """Where the documents or telemetry files are (the kind is chosen on the first page)."""

    def __init__(self, wizard: Any) -> None:
        super().__init__()
        self.wiz = wizard
        self.path_edit = QLineEdit()
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        self.group_edit = QLineEdit()
        self.group_edit.setPlaceholderText("with one file: the column whose values are the items, e.g. machine_id")
        self.time_edit = QLineEdit()
        self.time_edit.setPlaceholderText("optional: found by type or name (timestamp, time…)")
        self.help = muted_label("")
        self.form = QFormLayout(self)
        self.form.addRow("Path", _row(self.path_edit, self.browse))
        self.form.addRow("Group rows by", self.group_edit)
        self.form.addRow("Time column", self.time_edit)
        self.form.addRow("", self.help)
        self.path_edit.textChanged.connect(self.completeChanged)
        self.group_edit.textChanged.connect(self.completeChanged)

    def kind(self) -> str:
        return str(self.wiz.metadata_page.kind_combo.currentData())

    def initializePage(self) -> None:
        title, text = _HELP.get(self.kind(), ("Files", ""))
        self.setTitle(title)
        self.help.setText(text)
        telemetry = self.kind() == TELEMETRY
        for widget in (self.group_edit, self.time_edit):
            widget.setEnabled(telemetry)
            self.form.labelForField(widget).setEnabled(telemetry)

    def _browse(self) -> None:
        if self.kind() == TELEMETRY and self.group_edit.text().strip():
            path, _ = QFileDialog.getOpenFileName(self, "Telemetry file", "", "Telemetry (*.csv *.tsv *.parquet *.pq)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Folder")
        if path:
            self.path_edit.setText(path)

    def isComplete(self) -> bool:  # noqa: N802 - Qt's name
        if not self.path_edit.text().strip():
            return False
        path = Path(self.path_edit.text()).expanduser()
        if self.kind() == TELEMETRY and path.is_file():
            return bool(self.group_edit.text().strip())
        return path.is_dir()

    def nextId(self) -> int:
        return int(self.wiz.IMPORT)

    def work(self, common: dict) -> Callable[[Any], Any]:
        """The worker function importing this page's files with the first page's name and tags."""
        importer = IMPORTERS[self.kind()]
        return lambda op: importer(op, self, common)


def _row(edit: QLineEdit, browse: QPushButton) -> Any:
    from vital_desktop.ui.sheet_wizard import _path_row

    return _path_row(edit, browse)

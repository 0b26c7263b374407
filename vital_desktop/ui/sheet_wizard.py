"""The Create Sheet wizard: metadata file → key and image columns → image folder → preview → import.

Nothing is written until the last page; the import runs in a worker with progress and cancel,
and a refused import (duplicate keys, escaping paths…) shows the service's message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import html
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from vital_desktop.services import sheets as sheet_service
from vital_desktop.services.item_kinds import IMAGE, ITEM_KINDS
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.item_source_page import ItemSourcePage
from vital_desktop.ui.operations import OpEnv
from vital_desktop.ui.widgets import error_text, muted_label
from vital_desktop.ui.workers import Job

NO_IMAGES = "(no image column)"


def _path_row(edit: QLineEdit, browse: QPushButton) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    layout.addWidget(browse)
    return row


class MetadataPage(QWizardPage):
    def __init__(self, wizard: CreateSheetWizard) -> None:
        super().__init__()
        self.setTitle("Metadata file")
        self.setSubTitle("A CSV or Parquet file with one row per item. It is read in place, never copied.")
        self.wiz = wizard
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("/media/usb/inspection_records.csv")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.name_edit = QLineEdit()
        self.description_edit = QLineEdit()
        self.tag_boxes = {tag: QCheckBox(tag) for tag in sheet_service.CLASSIFICATION_TAGS}
        tags = QWidget()
        tag_layout = QHBoxLayout(tags)
        tag_layout.setContentsMargins(0, 0, 0, 0)
        for box in self.tag_boxes.values():
            tag_layout.addWidget(box)
        tag_layout.addStretch(1)
        self.message = muted_label()
        self.folder_only = QCheckBox("No metadata file: every image in a folder is an item")
        self.folder_only.toggled.connect(self._folder_only_toggled)
        # what the items are (services/item_kinds): documents and telemetry go to their own page
        self.kind_combo = QComboBox()
        for kind in ITEM_KINDS.values():
            self.kind_combo.addItem(kind.title, kind.name)
        self.kind_combo.currentIndexChanged.connect(self._kind_changed)
        form = QFormLayout(self)
        form.addRow("Items are", self.kind_combo)
        form.addRow("", self.folder_only)
        form.addRow("Metadata file", _path_row(self.path_edit, browse))
        form.addRow("Sheet name", self.name_edit)
        form.addRow("Description", self.description_edit)
        form.addRow("Classification", tags)
        form.addRow("", muted_label("PHI prohibits training and validation; PII prohibits training; "
                                    "EXPORT_CONTROLLED keeps items out of prompts."))
        form.addRow("", self.message)
        self.path_edit.textChanged.connect(self._path_changed)
        self.name_edit.textChanged.connect(self.completeChanged)


    def _folder_only_toggled(self, on: bool) -> None:
        self.path_edit.setEnabled(not on)
        self.completeChanged.emit()
    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Metadata file", "", "Metadata (*.csv *.tsv *.parquet *.pq)")
        if path:
            self.path_edit.setText(path)

    def _path_changed(self, text: str) -> None:
        path = Path(text).expanduser()
        if not self.name_edit.text() or self.name_edit.property("auto"):
            self.name_edit.setText(path.stem.replace("_", " ").title() if text else "")
            self.name_edit.setProperty("auto", True)
        self.completeChanged.emit()

    def images(self) -> bool:
        return self.kind_combo.currentData() == IMAGE

    def _kind_changed(self) -> None:
        self.folder_only.setEnabled(self.images())
        self.path_edit.setEnabled(self.images() and not self.folder_only.isChecked())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        has_source = not self.images() or self.folder_only.isChecked() or \
            Path(self.path_edit.text()).expanduser().is_file()
        return has_source and bool(self.name_edit.text().strip())

    def nextId(self) -> int:
        if not self.images():
            return self.wiz.ITEMS
        return self.wiz.FOLDER if self.folder_only.isChecked() else self.wiz.COLUMNS

    def validatePage(self) -> bool:
        if self.folder_only.isChecked() or not self.images():
            return True
        try:
            self.wiz.preview = sheet_service.preview_import(self.path_edit.text())
        except Exception as exc:  # noqa: BLE001 - shown on the page
            self.message.setText(error_text(exc))
            return False
        self.message.setText("")
        return True


class ColumnsPage(QWizardPage):
    def __init__(self, wizard: CreateSheetWizard) -> None:
        super().__init__()
        self.setTitle("Key and image columns")
        self.setSubTitle("The key identifies each item (it must be unique); the image column holds paths "
                         "relative to the image folder.")
        self.wiz = wizard
        self.key_combo = QComboBox()
        self.image_combo = QComboBox()
        self.info = muted_label()
        form = QFormLayout(self)
        form.addRow("Key column", self.key_combo)
        form.addRow("Image column", self.image_combo)
        form.addRow("", self.info)

    def initializePage(self) -> None:
        preview = self.wiz.preview
        columns = preview.columns if preview else []
        self.key_combo.clear()
        self.key_combo.addItems(columns)
        self.image_combo.clear()
        self.image_combo.addItems([NO_IMAGES, *columns])
        guess_key = next((c for c in columns if c.endswith("_id") or c in ("id", "item_ref")), columns[0] if columns else "")
        guess_image = next((c for c in columns if "image" in c or "path" in c or "file" in c), NO_IMAGES)
        self.key_combo.setCurrentText(guess_key)
        self.image_combo.setCurrentText(guess_image)
        self.info.setText(f"{preview.total_rows:,} rows, {len(columns)} columns" if preview else "")

    def image_column(self) -> str | None:
        text = self.image_combo.currentText()
        return None if text == NO_IMAGES else text

    def nextId(self) -> int:
        return self.wiz.FOLDER if self.image_column() else self.wiz.PREVIEW


class FolderPage(QWizardPage):
    def __init__(self, wizard: CreateSheetWizard) -> None:
        super().__init__()
        self.setTitle("Image folder")
        self.setSubTitle("Images stay where they are (a disk or removable media); the sheet stores their paths.")
        self.wiz = wizard
        self.folder_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.class_type_edit = QLineEdit()
        self.class_type_edit.setPlaceholderText("label type, e.g. the one whose classes are the folder names")
        form = QFormLayout(self)
        form.addRow("Image folder", _path_row(self.folder_edit, browse))
        form.addRow("Class folders → labels", self.class_type_edit)
        form.addRow("", muted_label("Optional, with no metadata file: images in <folder>/<class>/ get a label of "
                                    "this type with that class."))
        self.folder_edit.textChanged.connect(self.completeChanged)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Image folder")
        if path:
            self.folder_edit.setText(path)

    def initializePage(self) -> None:
        if not self.folder_edit.text() and self.wiz.metadata_page.path_edit.text() and \
                not self.wiz.metadata_page.folder_only.isChecked():
            guess = Path(self.wiz.metadata_page.path_edit.text()).expanduser().parent
            self.folder_edit.setText(str(guess / "images") if (guess / "images").is_dir() else str(guess))

    def isComplete(self) -> bool:
        return Path(self.folder_edit.text()).expanduser().is_dir()


class PreviewPage(QWizardPage):
    def __init__(self, wizard: CreateSheetWizard) -> None:
        super().__init__()
        self.setTitle("Preview of the join")
        self.setSubTitle("The first rows of the metadata file and whether their image was found.")
        self.wiz = wizard
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["key", "image", "found"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.summary = muted_label()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.problems: list[str] = []
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.summary)

    def initializePage(self) -> None:
        wiz = self.wiz
        if wiz.metadata_page.folder_only.isChecked():
            from vital_desktop.services.sheet_scan import list_images

            try:
                found = list_images(Path(wiz.folder_page.folder_edit.text()).expanduser())
            except OSError as exc:
                self.summary.setText(error_text(exc))
                return
            self.table.setRowCount(min(len(found), 10))
            for row, rel in enumerate(found[:10]):
                self.table.setItem(row, 0, QTableWidgetItem(rel))
                self.table.setItem(row, 1, QTableWidgetItem(rel))
                self.table.setItem(row, 2, QTableWidgetItem("yes"))
            self.summary.setText(f"{len(found):,} images will be indexed (item ref = path in the folder)")
            return
        image_column = wiz.columns_page.image_column()
        try:
            preview = sheet_service.preview_import(
                wiz.metadata_page.path_edit.text(), key_column=wiz.columns_page.key_combo.currentText(),
                image_root=wiz.folder_page.folder_edit.text() if image_column else None, image_column=image_column,
            )
        except Exception as exc:  # noqa: BLE001
            self.problems = [error_text(exc)]
            self.summary.setText(html.escape(error_text(exc)))
            self.completeChanged.emit()
            return
        self.table.setRowCount(len(preview.rows))
        for row, (key, image, exists) in enumerate(preview.rows):
            self.table.setItem(row, 0, QTableWidgetItem(key))
            self.table.setItem(row, 1, QTableWidgetItem(image or "—"))
            self.table.setItem(row, 2, QTableWidgetItem(("yes" if exists else "missing") if image_column else "—"))
        self.table.resizeColumnsToContents()
        images_found = sum(1 for entry in preview.rows if entry[2])
        text = (f"{preview.total_rows:,} items will be indexed"
                + (f"; {images_found} of the first {len(preview.rows)} images found" if image_column else ""))
        problems = []
        if preview.duplicate_keys:
            problems.append(f"the key column has duplicate values: {', '.join(preview.duplicate_keys[:5])}"
                            + ("…" if len(preview.duplicate_keys) > 5 else ""))
        if preview.escaping_paths:
            problems.append("image paths escape the image folder: " + "; ".join(preview.escaping_paths[:3])
                            + ("…" if len(preview.escaping_paths) > 3 else ""))
        self.problems = problems
        if problems:
            text += (f"<br><span style='color:{theme.DANGER}'><b>The import would be refused:</b> "
                     f"{html.escape('; '.join(problems))}. Go Back to choose another key column or fix the file.</span>")
        self.summary.setText(text)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not getattr(self, "problems", [])


class ImportPage(QWizardPage):
    def __init__(self, wizard: CreateSheetWizard) -> None:
        super().__init__()
        self.setTitle("Import")
        self.setSubTitle("Hashing the images and writing the item index (one transaction).")
        self.wiz = wizard
        self.bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel import")
        self.cancel_button.clicked.connect(self._cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self.job: Job | None = None
        self.done = False
        self.failed = False
        self.report = None

    def initializePage(self) -> None:
        self.done = False
        self.failed = False
        self.cancel_button.setEnabled(True)
        self.bar.setValue(0)
        self.wiz.start_import(self)
        self.lock_back(True)

    def lock_back(self, locked: bool) -> None:
        """No Back while the import runs or after it succeeded; Back works after a refusal."""
        QTimer.singleShot(0, lambda: self.wiz.button(QWizard.WizardButton.BackButton).setEnabled(not locked))

    def _cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def isComplete(self) -> bool:
        return self.done


class CreateSheetWizard(QWizard):
    """Create a sheet from a metadata file and an image folder."""

    METADATA, COLUMNS, FOLDER, PREVIEW, IMPORT, ITEMS = range(6)

    def __init__(self, context: AppContext, parent: QWidget | None = None, *, metadata: str | None = None,
                 folder: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Create Sheet")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.context = context
        self.preview: sheet_service.ImportPreview | None = None
        self.created_sheet: str | None = None
        self.metadata_page = MetadataPage(self)
        self.columns_page = ColumnsPage(self)
        self.folder_page = FolderPage(self)
        self.preview_page = PreviewPage(self)
        self.import_page = ImportPage(self)
        self.items_page = ItemSourcePage(self)  # documents, telemetry (ui/item_source_page)
        for page_id, page in ((self.METADATA, self.metadata_page), (self.COLUMNS, self.columns_page),
                              (self.FOLDER, self.folder_page), (self.PREVIEW, self.preview_page),
                              (self.IMPORT, self.import_page), (self.ITEMS, self.items_page)):
            self.setPage(page_id, page)
        # not a commit page: after a refused import, Back returns to fix it (ImportPage locks Back otherwise)
        self.preview_page.setButtonText(QWizard.WizardButton.NextButton, "Import")
        if metadata:
            self.metadata_page.path_edit.setText(metadata)
        if folder:
            self.folder_page.folder_edit.setText(folder)
        self.resize(720, 520)

    def start_import(self, page: ImportPage) -> None:
        image_column = self.columns_page.image_column()
        folder_only = self.metadata_page.folder_only.isChecked()
        arguments: dict[str, Any] = {
            "name": self.metadata_page.name_edit.text().strip(),
            "metadata_path": self.metadata_page.path_edit.text(),
            "key_column": self.columns_page.key_combo.currentText(),
            "image_root": self.folder_page.folder_edit.text() if image_column else None,
            "image_column": image_column,
            "classification": [t for t, box in self.metadata_page.tag_boxes.items() if box.isChecked()],
            "description": self.metadata_page.description_edit.text(),
        }
        if folder_only:
            arguments.update(metadata_path=None, key_column=None, image_column=None,
                             image_root=self.folder_page.folder_edit.text(),
                             class_label_type=self.folder_page.class_type_edit.text().strip() or None)
        page.status.setText("Starting…")

        def import_images(op: OpEnv) -> Any:
            return sheet_service.import_sheet(op.store, actor=op.actor, progress=op.progress, **arguments)

        work: Callable[[OpEnv], Any] = import_images
        if not self.metadata_page.images():
            work = self.items_page.work({key: arguments[key] for key in ("name", "classification", "description")})

        def finished(report) -> None:
            page.done = True
            page.cancel_button.setEnabled(False)
            page.bar.setValue(page.bar.maximum())
            missing = len(report.missing)
            page.status.setText(f"Imported {report.items:,} items into “{report.sheet.name}”"
                                + (f"; {missing} images missing" if missing else "."))
            self.created_sheet = report.sheet.name
            page.completeChanged.emit()
            page.lock_back(True)
            self.button(QWizard.WizardButton.FinishButton).setFocus()

        def failed(exc: BaseException) -> None:
            page.cancel_button.setEnabled(False)
            page.failed = True
            page.status.setText(f"Import refused: {error_text(exc)} Nothing was written; go Back to fix it.")
            page.lock_back(False)

        page.job = self.context.change(f"Importing sheet {arguments['name']}", work, on_result=finished,
                                       on_error=failed, cancellable=True, owner=self)
        timer_job = page.job

        def poll() -> None:
            if not timer_job.running:
                return
            snap = timer_job.snapshot()
            page.bar.setMaximum(max(snap.total, 1))
            page.bar.setValue(snap.done)
            if snap.message:
                page.status.setText(snap.message)
            QTimer.singleShot(100, poll)

        poll()

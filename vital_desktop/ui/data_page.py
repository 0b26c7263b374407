"""DATA stage: sheets with their classification, a sheet's detail, and its item grid.

The grid model fetches items a page at a time and thumbnails decode in the compute pool,
so a 100,000-item sheet opens at once. Dropping a folder or a CSV/Parquet file on the page
starts the Create Sheet wizard with it filled in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, QSize, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.services import sheets as sheet_service
from vital_desktop.services.item_kinds import item_kind
from vital_desktop.services.sheets import ItemInfo, SheetInfo
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.item_models import ItemCardDelegate, ItemGridModel, ItemPager, ItemRole
from vital_desktop.ui.item_views import content_preview, shows_content
from vital_desktop.ui.pages import Page
from vital_desktop.ui.permissions import gate, reason_label
from vital_desktop.ui.sheet_wizard import CreateSheetWizard
from vital_desktop.ui.widgets import (
    Card,
    ElidedLabel,
    KeyValuePanel,
    error_text,
    muted_label,
    page_layout,
    primary_button,
    show_error,
    title_label,
)
from vital_desktop.ui.workers import Job

SheetRole = Qt.ItemDataRole.UserRole + 10


def item_grid_view() -> QListView:
    """An icon grid of item cards with uniform sizes (cheap layout for huge sheets)."""
    view = QListView()
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setMovement(QListView.Movement.Static)
    view.setUniformItemSizes(True)
    # SinglePass: with uniform item sizes the whole layout of 100,000 cards is a few ms, and the
    # scroll bar knows its full range at once (Batched grows it while the user scrolls)
    view.setLayoutMode(QListView.LayoutMode.SinglePass)
    view.setSpacing(2)
    view.setGridSize(ItemCardDelegate.CARD + QSize(4, 4))
    view.setItemDelegate(ItemCardDelegate(view))
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    return view


class SheetList(QListWidget):
    """Sheets by name, with item count and classification tags."""

    def show_sheets(self, sheets: list[SheetInfo], select: str | None) -> None:
        self.blockSignals(True)
        self.clear()
        for sheet in sheets:
            tags = f"  [{', '.join(sheet.classification)}]" if sheet.classification else ""
            kind = "" if sheet.item_kind == "image" else f" ({sheet.item_kind})"
            item = QListWidgetItem(f"{sheet.name}\n{sheet.item_count:,} items{kind}{tags}")
            item.setData(SheetRole, sheet)
            item.setToolTip(sheet.description or sheet.name)
            self.addItem(item)
        self.blockSignals(False)
        names = [s.name for s in sheets]
        if select in names:
            self.setCurrentRow(names.index(select))
        elif sheets:
            self.setCurrentRow(0)


class DataPage(Page):
    """Browse sheets and their items; create sheets."""

    stage = "data"
    title = "DATA"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.setAcceptDrops(True)
        self.current: SheetInfo | None = None
        self.model: ItemGridModel | None = None
        self.wizard: CreateSheetWizard | None = None
        self.sheets_loaded = False
        self.pending_item: str | None = None
        self.awaiting_position: int | None = None

        root, header = page_layout(self, "Sheets",
                                   "Pointers to a metadata file and an image folder — nothing is copied.")
        self.create_button = primary_button("Create Sheet…")
        self.create_button.clicked.connect(lambda: self.open_wizard())
        header.addWidget(self.create_button)
        self.reason = reason_label()
        root.addWidget(self.reason)
        self.can_import = gate(context.user, "import_sheet", [self.create_button], self.reason, "Creating sheets")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.sheet_list = SheetList()
        self.sheet_list.setMinimumWidth(230)
        self.sheet_list.setSpacing(2)
        self.sheet_list.setWordWrap(True)
        self.sheet_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.sheet_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.sheet_list.currentItemChanged.connect(self._sheet_selected)
        left = Card("Sheets")
        left.body.addWidget(self.sheet_list)
        left.body.addWidget(muted_label("Drop a folder or a CSV here to create a sheet."))
        splitter.addWidget(left)

        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.setSpacing(theme.SPACING)
        self.detail_card = Card()
        self.sheet_title = ElidedLabel("", minimum=120)
        self.sheet_title.setObjectName("sectionTitle")
        self.tags_label = QLabel()
        self.tags_label.setTextFormat(Qt.TextFormat.RichText)
        title_row = QHBoxLayout()
        title_row.addWidget(self.sheet_title, 1)
        title_row.addWidget(self.tags_label)
        self.label_button = QPushButton("Label items…")
        self.label_button.setToolTip("Open the Canonical Labeling Tool on this sheet")
        self.label_button.clicked.connect(self._open_labeling)
        title_row.addWidget(self.label_button)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Pick up new, changed and deleted image files")
        self.rescan_button.clicked.connect(self._rescan)
        self.rescan_cancel = QPushButton("Cancel rescan")
        self.rescan_cancel.clicked.connect(lambda: self.rescan_job.cancel() if self.rescan_job else None)
        self.rescan_cancel.hide()
        title_row.addWidget(self.rescan_button)
        title_row.addWidget(self.rescan_cancel)
        self.rescan_job: Job | None = None
        self.detail_card.body.addLayout(title_row)
        self.rescan_status = muted_label("")
        self.detail_card.body.addWidget(self.rescan_status)
        self.detail = KeyValuePanel()
        self.detail_card.body.addWidget(self.detail)
        middle_layout.addWidget(self.detail_card)
        self.grid = item_grid_view()
        grid_card = Card("Items")
        grid_card.body.addWidget(self.grid)
        middle_layout.addWidget(grid_card, 1)
        splitter.addWidget(middle)

        self.metadata_card = Card("Item")
        self.item_title = title_label("")
        self.item_preview = QLabel()
        self.item_preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.item_preview.setMinimumHeight(180)
        self.metadata_table = QTableWidget(0, 2)
        self.metadata_table.setHorizontalHeaderLabels(["field", "value"])
        self.metadata_table.horizontalHeader().setStretchLastSection(True)
        self.metadata_table.verticalHeader().hide()
        self.metadata_table.verticalHeader().setDefaultSectionSize(24)
        self.metadata_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metadata_card.body.addWidget(self.item_title)
        self.metadata_card.body.addWidget(self.item_preview)
        self.metadata_card.body.addWidget(self.metadata_table, 1)
        self.metadata_card.setMinimumWidth(280)
        splitter.addWidget(self.metadata_card)
        splitter.setSizes([250, 700, 320])
        splitter.setStretchFactor(1, 1)
        root.addWidget(splitter, 1)
        self.splitter = splitter
        context.images.image_ready.connect(self._image_ready)
        self.reload()

    # --- sheets -------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        """Reload the sheet list (a small query) and keep the selection."""
        select = select or (self.current.name if self.current else None)
        self.context.query("sheets", lambda op: sheet_service.list_sheets(op.store), key="data.sheets",
                           on_result=lambda sheets: self._show_sheets(sheets, select))

    def _show_sheets(self, sheets: list[SheetInfo], select: str | None) -> None:
        self.sheets_loaded = True
        self.sheet_list.show_sheets(sheets, select)
        if self.sheet_list.count() == 0:
            self._show_sheet(None)
        else:
            self._sheet_selected(self.sheet_list.currentItem(), None)

    def on_changes(self, changes: Changes) -> None:
        if changes.sheets:
            self.reload()

    def activate(self, **arguments: Any) -> None:
        sheet, item = arguments.get("sheet"), arguments.get("item")
        if item:
            self.pending_item = item
        if sheet and (self.current is None or self.current.name != sheet):
            self.reload(select=sheet)
        elif item and self.current is not None:
            self.select_item(item)

    def _sheet_selected(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        self._show_sheet(current.data(SheetRole) if current is not None else None)

    def _show_sheet(self, sheet: SheetInfo | None) -> None:
        if sheet is not None and self.current is not None and sheet == self.current and self.model is not None:
            return
        self.current = sheet
        self.label_button.setEnabled(sheet is not None)
        self.rescan_button.setEnabled(sheet is not None and bool(sheet.image_root) and self.rescan_job is None
                                      and sheet.item_kind == "image")
        if sheet is None:
            self.sheet_title.setText("No sheets yet")
            self.tags_label.setText("")
            self.detail.set_rows([("", ("Create a sheet from a metadata file and an image folder, "
                                       "or drop them on this page."))])
            self.grid.setModel(None)
            self.model = None
            self._show_item(None)
            return
        self.sheet_title.setText(sheet.name)
        self.tags_label.setText(theme.tag_html(sheet.classification))
        missing = (f"<span style='color:{theme.DANGER}'>{sheet.missing_count:,} missing files</span>"
                   if sheet.missing_count else "none missing")
        self.detail.set_rows([
            ("Description", sheet.description or "—"),
            ("Metadata source", f"{sheet.metadata_path} ({sheet.metadata_format})"),
            ("Image root", sheet.image_root or "— (no images)"),
            ("Key / image column", f"{sheet.key_column} / {sheet.image_column or '—'}"),
            ("Items", f"{sheet.item_count:,} items, {missing}"),
            ("Item kind", item_kind(sheet.item_kind).title),
            ("Columns", ", ".join(sheet.columns)),
            ("Created", f"{sheet.created_at or ''} by {sheet.created_by}"),
        ], rich=False)
        self.detail.values["Items"].setText(f"{sheet.item_count:,} items, {missing}")
        pager = ItemPager(self.context, sheet.name, sheet.item_count, parent=self)
        pager.page_loaded.connect(self._page_loaded)
        self.awaiting_position = None
        self.model = ItemGridModel(self.context, pager, parent=self)
        self.grid.setModel(self.model)
        self.grid.selectionModel().selectionChanged.connect(self._item_selected)
        self._show_item(None)
        if self.pending_item:
            self.select_item(self.pending_item)

    def select_item(self, item_ref: str) -> None:
        """Select an item by its ref (deep link); loads it directly, whatever its page."""
        assert self.current is not None and self.model is not None
        self.pending_item = None
        sheet = self.current.name
        self.context.query("item", lambda op: sheet_service.get_item(op.store, sheet, item_ref), key="data.item",
                           on_result=self._select_loaded_item, on_error=lambda exc: show_error(self, "Item", exc))

    def _select_loaded_item(self, item: ItemInfo) -> None:
        if self.model is None:
            return
        index = self.model.index(item.position)
        self.grid.setCurrentIndex(index)
        self.grid.scrollTo(index)
        self._show_item(item)

    # --- items --------------------------------------------------------------------------------
    def _item_selected(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        indexes = selected.indexes()
        if not indexes or self.model is None:
            return
        position = self.model.position(indexes[0].row())
        item = indexes[0].data(ItemRole) or self.model.pager.item(position)  # None: its page is on the way
        if item is None:
            self.awaiting_position = position
            self.item_title.setText("loading…")
            return
        self._show_item(item)

    def _page_loaded(self, first: int, last: int) -> None:
        position = self.awaiting_position
        if position is not None and first <= position <= last and self.model is not None:
            self.awaiting_position = None
            self._show_item(self.model.pager.item(position))

    def _show_item(self, item: ItemInfo | None) -> None:
        self.shown_item = item
        if item is None:
            self.item_title.setText("Select an item")
            self.item_preview.clear()
            self.metadata_table.setRowCount(0)
            return
        self.item_title.setText(item.item_ref)
        rows = [("image", item.image_path or "—"), ("missing", "yes" if item.missing else "no"),
                ("sha256", (item.file_sha256 or "—")[:16] + ("…" if item.file_sha256 else "")),
                *[(k, (v if isinstance(v, str) else json.dumps(v))[:300]) for k, v in item.metadata.items()]]
        self.metadata_table.setRowCount(len(rows))
        for row, (key, value) in enumerate(rows):
            self.metadata_table.setItem(row, 0, QTableWidgetItem(key))
            self.metadata_table.setItem(row, 1, QTableWidgetItem(str(value)))
        self.metadata_table.resizeColumnToContents(0)
        self._show_preview(item)

    def _show_preview(self, item: ItemInfo) -> None:
        if self.current is not None and shows_content(self.current.item_kind):  # documents, telemetry: text
            self.item_preview.setWordWrap(True)
            self.item_preview.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            self.item_preview.setText(content_preview(item.metadata))
            return
        self.item_preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        path = item.absolute_image_path
        pixmap = self.context.images.image(path) if path and not item.missing else None
        if pixmap is None:
            self.item_preview.setText("image missing" if item.missing else ("loading…" if path else "no image"))
            self.context.images.prefetch(path)
            return
        self.item_preview.setPixmap(pixmap.scaled(QSize(260, 260), Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation))

    def _image_ready(self, path: str) -> None:
        item = getattr(self, "shown_item", None)
        if item is not None and item.absolute_image_path == path:
            self._show_preview(item)

    def _rescan(self) -> None:
        """Rescan the sheet's folder in a worker, with progress and cancel on this card."""
        from PySide6.QtCore import QTimer

        from vital_desktop.services import sheet_rescan

        if self.current is None or self.rescan_job is not None:
            return
        name = self.current.name
        self.rescan_button.setEnabled(False)
        self.rescan_cancel.show()

        def done(report) -> None:
            self.rescan_status.setText(report.text())

        def failed(exc: BaseException) -> None:
            self.rescan_status.setText(f"Rescan stopped: {error_text(exc)} Nothing was changed.")

        job = self.context.change(f"Rescanning {name}", lambda op: sheet_rescan.rescan_sheet(
            op.store, actor=op.actor, sheet=name, progress=op.progress), on_result=done, on_error=failed, cancellable=True)
        self.rescan_job = job

        def poll() -> None:
            if job.running:
                snap = job.snapshot()
                self.rescan_status.setText(f"Rescanning… {snap.done:,} / {snap.total:,} {snap.message}")
                QTimer.singleShot(150, poll)
                return
            self.rescan_job = None
            self.rescan_button.setEnabled(self.current is not None)
            self.rescan_cancel.hide()

        poll()

    def _open_labeling(self) -> None:
        if self.current is not None:
            item = getattr(self, "shown_item", None)
            self.context.navigate("canonical", sheet=self.current.name, item=item.item_ref if item else None)

    # --- create sheet -------------------------------------------------------------------------
    def open_wizard(self, *, metadata: str | None = None, folder: str | None = None) -> CreateSheetWizard | None:
        """The Create Sheet wizard, only for users who may import (others read why on the page)."""
        if not self.can_import:
            self.context.say(self.reason.text())
            return None
        wizard = CreateSheetWizard(self.context, self, metadata=metadata, folder=folder)
        wizard.finished.connect(lambda _code, w=wizard: self._wizard_done(w))
        self.wizard = wizard
        wizard.open()
        return wizard

    def _wizard_done(self, wizard: CreateSheetWizard) -> None:
        if wizard.created_sheet:
            self.reload(select=wizard.created_sheet)
        self.wizard = None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        self.open_dropped(paths)
        event.acceptProposedAction()

    def open_dropped(self, paths: list[Path]) -> CreateSheetWizard | None:
        """Start the wizard from dropped paths: a metadata file, an image folder, or a folder holding both."""
        metadata = next((p for p in paths if p.is_file() and p.suffix.lower() in sheet_service.METADATA_FORMATS), None)
        folder = next((p for p in paths if p.is_dir()), None)
        if metadata is None and folder is not None:
            candidates = sorted(p for p in folder.iterdir() if p.suffix.lower() in sheet_service.METADATA_FORMATS)
            if candidates:
                metadata = candidates[0]
                folder = folder / "images" if (folder / "images").is_dir() else folder
        if metadata is None and folder is None:
            return None
        return self.open_wizard(metadata=str(metadata) if metadata else None,
                                folder=str(folder) if folder else None)

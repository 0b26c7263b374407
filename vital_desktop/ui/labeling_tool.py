"""The Canonical Labeling Tool (Mode B): label source items directly, once, for every reuse.

Keyboard first: number keys pick a class, Enter saves and moves to the next unlabeled item,
arrows move, Ctrl+Z / Ctrl+Shift+Z undo and redo label actions, Escape closes (the keys are
declared in `ui.actions`). A save goes to the store (writer thread) and the tool moves on only
when it returned, so nothing acknowledged is ever lost. The next items' images are decoded in
the background while the expert looks at the current one.
"""

from __future__ import annotations

import json
import time
from typing import Any

import shiboken6
from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.geometry import check_shapes
from vital_desktop.services import label_types as label_type_service
from vital_desktop.services import labels as label_service
from vital_desktop.services import review as review_service
from vital_desktop.services import sheets as sheet_service
from vital_desktop.services.labels import CONFIDENCE_LEVELS, LabelInfo
from vital_desktop.services.sheets import ItemInfo, SheetInfo
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.data_page import item_grid_view
from vital_desktop.ui.image_view import ImageView
from vital_desktop.ui.item_models import ItemGridModel, ItemPager, PositionRole
from vital_desktop.ui.label_commands import LabelActionCommand, LabelKey
from vital_desktop.ui.pages import Page
from vital_desktop.ui.schema_form import SchemaForm
from vital_desktop.ui.shape_model import DIGIT_KEYS
from vital_desktop.ui.usage_constraints import UsageConstraints
from vital_desktop.ui.widgets import muted_label, primary_button, show_error, title_label

FILTERS = (("All items", None), ("Unlabeled", "unlabeled"), ("Labeled", "labeled"), ("Conflicting", "conflict"))
PREFETCH_AHEAD = 3


GEOMETRY_NOUNS = {"boxes": "box(es)", "polygons": "polygon(s)", "points": "point(s)"}
HINTS = {
    None: "1–9 pick a class · Enter save and next · ←/→ move · Ctrl+Z undo · wheel zoom, drag pan, double-click fit",
    "boxes": "1–9 class · drag draws a box · Backspace deletes · Enter save and next · Ctrl+Z undo · "
             "wheel zoom, right-drag pan",
    "polygons": "1–9 class · click adds a vertex · Enter closes the polygon, then saves · Backspace deletes a "
                "vertex · Esc drops the open polygon · Ctrl+Z undo · wheel zoom, right-drag pan",
    "points": "1–9 class · click adds a point · drag moves · Backspace deletes · Enter save and next · "
              "Ctrl+Z undo · wheel zoom, right-drag pan",
}


def summarize(data: dict) -> str:
    """A label's data in one short line ('inclusion, major' / '2 box(es)')."""
    for key, noun in GEOMETRY_NOUNS.items():
        if isinstance(data.get(key), list):
            return f"{len(data[key])} {noun}"
    parts = [str(v) if not isinstance(v, float) else f"{v:.2f}" for v in data.values() if v not in (None, "")]
    return ", ".join(parts)[:80] or "(empty)"


#: How many items "Claim next" reserves at once.
CLAIM_BATCH = 20

class CanonicalLabelingTool(Page):
    """Pick a sheet and a label type; label items with the keyboard; see history and other labels."""

    stage = "canonical"
    title = "Canonical Labels"
    #: emitted when an item's image is on screen (the latency benchmark listens)
    item_shown = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.sheet: SheetInfo | None = None
        self.label_type = "classification"
        self.pager: ItemPager | None = None
        self.model: ItemGridModel | None = None
        self.position: int | None = None
        self.item: ItemInfo | None = None
        self.current_label: LabelInfo | None = None
        self.pending_saves: dict[str, str] = {}  # item_ref -> its status before the save (in flight)
        self.stale = False
        self.labels_ready = False
        self.touched = False
        self.form: SchemaForm | None = None
        self.undo_stack = QUndoStack(self)
        self.image_misses = 0  # images decoded on the GUI thread because the prefetch had not finished
        self._build()
        context.images.image_ready.connect(self._image_ready)

    # --- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(20, 14, 20, 14)
        root.setSpacing(theme.SPACING)
        top = QHBoxLayout()
        top.addWidget(title_label("Canonical Labeling Tool", "pageTitle"))
        top.addSpacing(16)
        self.sheet_combo = QComboBox()
        self.sheet_combo.setMinimumWidth(260)
        self.sheet_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.sheet_combo.activated.connect(lambda _i: self.open_sheet(self.sheet_combo.currentText()))
        self.type_combo = QComboBox()
        self.type_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        for name, label_type in label_type_service.list_label_types(self.context.store).items():
            self.type_combo.addItem(label_type.title, name)
        self.type_combo.activated.connect(lambda _i: self.set_label_type(self.type_combo.currentData()))
        self.filter_combo = QComboBox()
        self.filter_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        for text, value in FILTERS:
            self.filter_combo.addItem(text, value)
        self.filter_combo.activated.connect(lambda _i: self.set_filter(self.filter_combo.currentData()))
        for label, widget in (("Sheet", self.sheet_combo), ("Label type", self.type_combo),
                              ("Show", self.filter_combo)):
            top.addWidget(muted_label(label, wrap=False))
            top.addWidget(widget)
        top.addStretch(1)
        self.progress_label = QLabel("")
        top.addWidget(self.progress_label)
        self.claim_button = QPushButton(f"Claim next {CLAIM_BATCH}")
        self.claim_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.claim_button.setToolTip(f"Reserve the next {CLAIM_BATCH} unlabeled items for "
                                     f"{review_service.DEFAULT_CLAIM_MINUTES} minutes so no other expert labels them "
                                     "meanwhile (your saves release them)")
        self.claim_button.clicked.connect(self.claim_next)
        top.addWidget(self.claim_button)
        close = QPushButton("Close  (Esc)")
        close.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close.clicked.connect(self.close_tool)
        top.addWidget(close)
        root.addLayout(top)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.grid = item_grid_view()
        self.grid.setMinimumWidth(180)
        self.grid.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.grid.clicked.connect(self._grid_clicked)
        splitter.addWidget(self.grid)

        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 0)
        caption = QHBoxLayout()
        self.item_title = title_label("")
        self.item_status = QLabel("")
        self.item_status.setTextFormat(Qt.TextFormat.RichText)
        caption.addWidget(self.item_title)
        caption.addWidget(self.item_status)
        caption.addStretch(1)
        self.position_label = muted_label("", wrap=False)
        caption.addWidget(self.position_label)
        center_layout.addLayout(caption)
        self.image_view = ImageView()
        self.image_view.text_typed.connect(self._typed)
        center_layout.addWidget(self.image_view, 1)
        self.context_label = muted_label("")
        self.context_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        center_layout.addWidget(self.context_label)
        self.hint = muted_label(HINTS[None])
        center_layout.addWidget(self.hint)
        splitter.addWidget(center)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 6, 0)
        side_layout.setSpacing(10)
        self.form_box = QGroupBox("Label")
        self.form_layout = QVBoxLayout(self.form_box)
        side_layout.addWidget(self.form_box)
        details = QGroupBox("Notes and confidence")
        details_layout = QVBoxLayout(details)
        self.notes = QLineEdit()
        self.notes.setPlaceholderText("notes (e.g. foreign particle embedded during growth)")
        details_layout.addWidget(self.notes)
        confidence_row = QHBoxLayout()
        confidence_row.addWidget(muted_label("confidence", wrap=False))
        self.confidence_group = QButtonGroup(self)
        for i, level in enumerate(CONFIDENCE_LEVELS):
            button = QRadioButton(level)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.confidence_group.addButton(button, i)
            confidence_row.addWidget(button)
        confidence_row.addStretch(1)
        details_layout.addLayout(confidence_row)
        side_layout.addWidget(details)
        self.usage = UsageConstraints()
        side_layout.addWidget(self.usage)
        buttons = QHBoxLayout()
        self.save_button = primary_button("Save and next  (Enter)")
        self.save_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.save_button.clicked.connect(self.save_and_next)
        buttons.addWidget(self.save_button)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.undo_button.clicked.connect(self.undo)
        self.redo_button = QPushButton("Redo")
        self.redo_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.redo_button.clicked.connect(self.redo)
        self.undo_stack.canUndoChanged.connect(self.undo_button.setEnabled)
        self.undo_stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.undo_stack.undoTextChanged.connect(self._undo_text_changed)
        self.undo_stack.redoTextChanged.connect(self._redo_text_changed)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)
        buttons.addWidget(self.undo_button)
        buttons.addWidget(self.redo_button)
        side_layout.addLayout(buttons)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        side_layout.addWidget(self.message)

        others = QGroupBox("Other labels of this item")
        others_layout = QVBoxLayout(others)
        self.other_labels = QListWidget()
        self.other_labels.setMaximumHeight(110)
        self.other_labels.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.other_labels.itemDoubleClicked.connect(self._other_label_opened)
        others_layout.addWidget(self.other_labels)
        others_layout.addWidget(muted_label("One label per (sheet, item, label type): double-click to open it."))
        side_layout.addWidget(others)

        history = QGroupBox("History")
        history_layout = QVBoxLayout(history)
        self.history = QListWidget()
        self.history.setMaximumHeight(140)
        self.history.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        history_layout.addWidget(self.history)
        self.rollback_button = QPushButton("Roll back to the selected version")
        self.rollback_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.rollback_button.clicked.connect(self.rollback_selected)
        history_layout.addWidget(self.rollback_button)
        side_layout.addWidget(history)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(side)
        scroll.setMinimumWidth(390)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        splitter.addWidget(scroll)
        splitter.setSizes([330, 620, 410])
        splitter.setStretchFactor(1, 1)
        root.addWidget(splitter, 1)
        self.splitter = splitter

    # --- opening ------------------------------------------------------------------------------
    def activate(self, **arguments: Any) -> None:
        sheets = [s.name for s in sheet_service.list_sheets(self.context.store)]
        self.sheet_combo.clear()
        self.sheet_combo.addItems(sheets)
        if arguments.get("label_type"):
            self.label_type = arguments["label_type"]
        wanted = arguments.get("sheet") or (self.sheet.name if self.sheet else None) or (sheets[0] if sheets else None)
        if wanted is None:
            self.item_title.setText("No sheets yet: create one on the DATA page")
            return
        if self.sheet is None or self.sheet.name != wanted or self.stale:
            self.open_sheet(wanted, item=arguments.get("item"))
        elif arguments.get("item"):
            self.open_item(arguments["item"])
        self.stale = False
        self.image_view.setFocus()

    def open_sheet(self, name: str, *, item: str | None = None) -> None:
        try:
            self.sheet = sheet_service.get_sheet(self.context.store, name)
        except Exception as exc:  # noqa: BLE001
            show_error(self, "Open sheet", exc)
            return
        self.sheet_combo.setCurrentText(self.sheet.name)
        self.usage.set_tags(self.sheet.classification)
        self.pager = ItemPager(self.context, self.sheet.name, self.sheet.item_count, parent=self)
        self.pager.page_loaded.connect(lambda *_: self._prefetch_neighbours())
        self.model = ItemGridModel(self.context, self.pager, parent=self)
        self.grid.setModel(self.model)
        self.undo_stack.clear()
        self.set_label_type(self.label_type, item=item)

    def set_label_type(self, name: str, *, item: str | None = None) -> None:
        """Switch the label type: new form, statuses and progress; keep the item if one is shown."""
        label_type = label_type_service.get_label_type(self.context.store, name)
        self.label_type = name
        self.type_combo.setCurrentIndex(self.type_combo.findData(name))
        if self.form is not None:
            self.image_view.set_shape_model(None)
            self.form.setParent(None)
            self.form.deleteLater()
        self.form = SchemaForm(label_type)
        self.form.changed.connect(self._form_touched)
        for chooser in (self.form.class_picker, self.form.shape_list.chooser if self.form.shape_list else None):
            if chooser is not None:
                chooser.filter_finished.connect(self.image_view.setFocus)
        self.form_layout.addWidget(self.form)
        self.form_box.setTitle(f"Label — {label_type.title}")
        self.image_view.set_shape_model(self.form.shape_model)
        hint = HINTS.get(self.form.geometry, HINTS[None])
        if len(self.form.classes) > len(DIGIT_KEYS):
            hint = hint.replace("1–9", f"1–9, 0 (first ten of {len(self.form.classes)}) · type a name to filter", 1)
        self.hint.setText(hint)
        self.image_view.setFocus()  # the keyboard's home: digits, letters (filter), Enter, Backspace
        if self.sheet is None or self.model is None:
            return
        refs = sheet_service.item_refs(self.context.store, self.sheet.name)
        statuses = label_service.item_status(self.context.store, sheet=self.sheet.name, label_type=name)
        self.model.set_statuses(refs, statuses)
        self.model.set_filter(self.filter_combo.currentData())
        self._update_progress()
        keep = item or (self.item.item_ref if self.item is not None else None)
        if keep:
            self.open_item(keep)
        else:
            first = self._next_unlabeled(-1)
            self.show_position(first if first is not None else 0)

    def set_filter(self, status: str | None) -> None:
        if self.model is None:
            return
        self.filter_combo.setCurrentIndex(self.filter_combo.findData(status))
        self.model.set_filter(status)
        if self.model.rowCount():
            current_row = self.model.row_of_position(self.position) if self.position is not None else None
            self.show_position(self.model.position(current_row if current_row is not None else 0))

    def open_item(self, item_ref: str) -> None:
        if self.model is None or self.model.refs is None:
            return
        try:
            self.show_position(self.model.refs.index(item_ref))
        except ValueError:
            show_error(self, "Open item", KeyError(f"sheet {self.sheet.name if self.sheet else ''!r} has no item "
                                                   f"{item_ref!r}"))

    # --- showing an item ----------------------------------------------------------------------
    def show_position(self, position: int) -> None:
        """Show one item: image (from the prefetch cache when possible), label, history, others."""
        if self.pager is None or self.model is None or self.sheet is None:
            return
        if not 0 <= position < self.pager.total:
            return
        item = self.pager.item_now(position)
        if item is None:
            return
        self.position = position
        self.item = item
        self._show_image(item)
        self.item_title.setText(item.item_ref)
        self.position_label.setText(f"{position + 1:,} / {self.pager.total:,}")
        context = [f"{k}: {v}" for k, v in item.metadata.items() if k not in (self.sheet.key_column,
                                                                             self.sheet.image_column)]
        self.context_label.setText("  ·  ".join(context))
        self.form.blockSignals(True)
        self.form.set_value(None)
        self.form.blockSignals(False)
        self._request_labels()
        row = self.model.row_of_position(position)
        if row is not None:
            index = self.model.index(row)
            self.grid.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self.grid.scrollTo(index)
        self._prefetch_neighbours()
        self.item_shown.emit(item.item_ref)

    def _show_image(self, item: ItemInfo) -> None:
        path = item.absolute_image_path
        if not path or item.missing:
            self.image_view.show_pixmap(None, "image missing" if item.missing else "this sheet has no images")
            return
        pixmap = self.context.images.image(path)
        if pixmap is None:
            self.image_misses += 1
            pixmap = self.context.images.image_now(path)
        self.image_view.show_pixmap(pixmap, "cannot read the image file")

    def _image_ready(self, path: str) -> None:
        """Nothing to do for prefetched neighbours; only repaint if the current image just arrived."""
        if self.item is not None and self.item.absolute_image_path == path and not self.image_view.has_image():
            self._show_image(self.item)

    def _fetch_labels(self, item_ref: str, label_type: str) -> tuple[list[LabelInfo], list]:
        """Every label of the item and the history of the current type's label (worker or GUI thread)."""
        assert self.sheet is not None
        store, sheet = self.context.store, self.sheet.name
        all_labels = label_service.item_labels(store, sheet=sheet, item_ref=item_ref)
        versions = []
        if any(lab.label_type == label_type for lab in all_labels):
            versions = label_service.history(store, sheet=sheet, item_ref=item_ref, label_type=label_type)
        return all_labels, versions

    def _request_labels(self) -> None:
        """Load the item's labels in the background: the image is already on screen."""
        assert self.item is not None
        self.labels_ready = False
        self.touched = False
        item_ref, label_type = self.item.item_ref, self.label_type
        self.context.run("labels", lambda _p: self._fetch_labels(item_ref, label_type),
                         on_result=lambda result: self._labels_arrived(item_ref, label_type, result), visible=False)

    def _labels_arrived(self, item_ref: str, label_type: str, result: tuple[list[LabelInfo], list]) -> None:
        if self.item is None or self.item.item_ref != item_ref or self.label_type != label_type:
            return  # the expert moved on meanwhile
        self._apply_labels(*result)

    def _load_labels(self) -> None:
        """Load the current item's labels now (after a save, or when Enter beats the background load)."""
        assert self.item is not None
        self._apply_labels(*self._fetch_labels(self.item.item_ref, self.label_type))

    def _apply_labels(self, all_labels: list[LabelInfo], versions: list) -> None:
        assert self.sheet is not None and self.item is not None and self.form is not None
        self.labels_ready = True
        self.current_label = next((lab for lab in all_labels if lab.label_type == self.label_type), None)
        label = self.current_label
        if self.touched:  # a class was picked before the label arrived: keep the expert's input
            self._show_label_meta(label, all_labels, versions)
            return
        self.form.blockSignals(True)
        self.form.set_value(label.label_data if label else None)
        self.form.blockSignals(False)
        self.notes.setText(label.notes if label else "")
        self.confidence_group.setExclusive(False)
        for button in self.confidence_group.buttons():
            button.setChecked(False)
        self.confidence_group.setExclusive(True)
        if label and label.confidence in CONFIDENCE_LEVELS:
            self.confidence_group.button(CONFIDENCE_LEVELS.index(label.confidence)).setChecked(True)
        self.usage.set_value(label)
        self._show_label_meta(label, all_labels, versions)

    def _show_label_meta(self, label: LabelInfo | None, all_labels: list[LabelInfo], versions: list) -> None:
        assert self.sheet is not None and self.item is not None
        status = "unlabeled" if label is None else ("conflict" if label.review_state == "conflict" else "labeled")
        color = theme.STATUS_COLORS.get(status, theme.MUTED)
        version = f" · v{label.version} by {label.updated_by}" if label else ""
        self.item_status.setText(f"<span style='color:{color}; font-weight:600'>● {status}</span>"
                                 f"<span style='color:{theme.MUTED}'>{version}</span>")
        self.other_labels.clear()
        for other in all_labels:
            if other.label_type == self.label_type:
                continue
            entry = QListWidgetItem(f"{self._type_title(other.label_type)}: "
                                    f"{summarize(other.label_data)}  (v{other.version}, {other.updated_by})")
            entry.setData(Qt.ItemDataRole.UserRole, other.label_type)
            self.other_labels.addItem(entry)
        if not self.other_labels.count():
            self.other_labels.addItem("— no other label types yet —")
        self.history.clear()
        if label is not None:
            for version in reversed(versions):
                entry = QListWidgetItem(f"v{version.version}  {version.action:<8} {version.changed_by}  "
                                        f"{(version.changed_at or '')[:16]}  —  {summarize(version.label_data)}")
                entry.setData(Qt.ItemDataRole.UserRole, version.version)
                entry.setToolTip(json.dumps(version.label_data) + (f"\n{version.reason}" if version.reason else ""))
                self.history.addItem(entry)
        self.rollback_button.setEnabled(label is not None and self.history.count() > 1)
        self.message.setText("")

    def _prefetch_neighbours(self) -> None:
        """Decode the next items' images (and the previous one) while the expert works."""
        if self.model is None or self.pager is None or self.position is None:
            return
        targets = []
        row = self.model.row_of_position(self.position)
        if row is not None:
            for step in (*range(1, PREFETCH_AHEAD + 1), -1):
                if 0 <= row + step < self.model.rowCount():
                    targets.append(self.model.position(row + step))
        following = self._next_unlabeled(self.position)
        if following is not None:
            targets.append(following)
        for position in targets:
            item = self.pager.item(position)
            if item is not None and item.absolute_image_path and not item.missing:
                self.context.images.prefetch(item.absolute_image_path)

    # --- navigation ---------------------------------------------------------------------------
    def _grid_clicked(self, index: QModelIndex) -> None:
        position = index.data(PositionRole)
        if position is not None:
            self.show_position(position)
            self.image_view.setFocus()

    def _step(self, delta: int) -> None:
        if self.model is None or self.position is None or self.model.rowCount() == 0:
            return
        row = self.model.row_of_position(self.position)
        row = 0 if row is None else min(max(row + delta, 0), self.model.rowCount() - 1)
        self.show_position(self.model.position(row))

    def next_item(self) -> None:
        self._step(1)

    def previous_item(self) -> None:
        self._step(-1)

    def _next_unlabeled(self, after: int) -> int | None:
        if self.model is None or self.model.refs is None:
            return None
        refs, statuses = self.model.refs, self.model.statuses
        n = len(refs)
        for offset in range(1, n + 1):
            position = (after + offset) % n
            if refs[position] not in statuses:
                return position if position != after else None
        return None

    def close_tool(self) -> None:
        """Escape: drop an open polygon, else close the tool."""
        if self.form is not None and self.form.shape_model is not None and self.form.shape_model.cancel_drawing():
            return
        self.context.navigate("back")

    def _refuse(self, text: str) -> None:
        self.message.setText(f"<span style='color:{theme.DANGER}'>{text}</span>")
        self.image_view.setFocus()

    # --- labeling -----------------------------------------------------------------------------
    def pick_class(self, index: int) -> None:
        """A digit key (index 0 for "1" … 9 for "0"): the class whose key it is."""
        if self.form is None or not 0 <= index < len(DIGIT_KEYS):
            return
        chosen = self.form.class_for_key(DIGIT_KEYS[index])
        if chosen is not None and self.form.pick_class(chosen):
            self.touched = True
            self.message.setText("")

    def _typed(self, text: str) -> None:
        """A letter typed on the canvas: a class's own shortcut, else the start of a class filter."""
        if self.form is None:
            return
        chosen = self.form.class_for_key(text)
        if chosen is not None and self.form.pick_class(chosen):
            self.touched = True
            self.message.setText("")
        elif not self.form.start_filter(text):
            self.message.setText(f"No class has the key {text!r}.")

    def _form_touched(self) -> None:
        self.touched = True

    def claim_next(self) -> None:
        """Claim the next unlabeled items of this sheet and label type for this expert."""
        if self.sheet is None:
            return
        store, actor = self.context.store, self.context.user
        sheet, label_type = self.sheet.name, self.label_type

        def done(claimed: review_service.ClaimResult) -> None:
            if claimed.claimed:
                until = (claimed.expires_at or "")[11:16]
                self.context.say(f"Claimed {len(claimed.claimed)} items ({claimed.claimed[0]} …) until {until} UTC; "
                                 "other experts cannot label them meanwhile.")
                self.message.setText(f"Claimed {len(claimed.claimed)} items until {until} UTC.")
            else:
                self.message.setText("Nothing to claim: every item is labeled or held by someone else.")

        self.context.run_change(f"Claiming {CLAIM_BATCH} items", lambda _p: review_service.claim_items(
            store, actor=actor, sheet=sheet, label_type=label_type, count=CLAIM_BATCH), on_result=done)

    @property
    def saving(self) -> bool:
        """True while a save is on its way to the store."""
        return bool(self.pending_saves)

    def save_and_next(self) -> None:
        """Save the form as the item's label and move on to the next unlabeled item at once.

        The save runs on the single store-writer thread (saves land in the order they were made)
        while the expert already sees the next image: moving on never waits for the disk. If a
        save is refused, the tool says why and returns to that item. A crash in the few
        milliseconds a save is in flight loses at most that label, the one just typed.
        """
        if self.form is None or self.item is None or self.sheet is None:
            return
        if self.item.item_ref in self.pending_saves:
            return  # its previous save is still on its way; the version must be known first
        shapes = self.form.shape_model
        if shapes is not None and shapes.drawing:  # Enter closes the open polygon first
            if not shapes.close_polygon():
                self._refuse("A polygon needs at least 3 vertices: click to add more, or Esc to drop it.")
            return
        if not self.labels_ready:  # Enter came before the background load: the version must be known
            self._load_labels()
        missing = self.form.missing_required()
        if missing:
            keys = "number keys" if len(self.form.classes) <= len(DIGIT_KEYS) else "number keys, or type to filter"
            self._refuse(f"Choose {', '.join(missing)} first ({keys}).")
            return
        if shapes is not None:
            size = self.image_view.image_size()
            try:
                if size is None:
                    raise ValidationError(f"item {self.item.item_ref}: no image to check the shapes against")
                check_shapes(self.form.value(), size[0], size[1], where=f"item {self.item.item_ref}")
            except ValidationError as exc:
                self._refuse(f"Not saved: {exc}")
                return
        allowed, prohibited, reason = self.usage.value()
        checked = self.confidence_group.checkedId()
        key = LabelKey(self.sheet.name, self.item.item_ref, self.label_type)
        before = self.current_label.version if self.current_label else None
        arguments = {"sheet": key.sheet, "item_ref": key.item_ref, "label_type": key.label_type,
                     "label_data": self.form.value(), "allowed_uses": allowed, "prohibited_uses": prohibited,
                     "usage_reason": reason, "confidence": CONFIDENCE_LEVELS[checked] if checked >= 0 else None,
                     "notes": self.notes.text().strip(), "expected_version": before}
        store, actor = self.context.store, self.context.user
        previous_status = self.model.statuses.get(key.item_ref, "unlabeled") if self.model is not None else ""
        self.pending_saves[key.item_ref] = previous_status
        self.save_started = time.perf_counter()
        self.context.run_change(
            f"Saving {key.item_ref}", lambda _p: review_service.label_item(store, actor=actor, **arguments),
            on_result=lambda result: self._saved(key, before, result),
            on_error=lambda exc: self._save_failed(key, exc),
        )
        if self.model is not None:
            self.model.update_status(key.item_ref, "labeled")  # optimistic; corrected when the save returns
        self._update_progress()
        self.image_view.setFocus()  # the next key (a digit, Enter) belongs to the item, not to a text field
        following = self._next_unlabeled(self.position if self.position is not None else -1)
        if following is None:
            self.message.setText(f"<span style='color:{theme.SUCCESS}'>Every item has a "
                             f"{self._type_title(self.label_type)} label.</span>")
            return
        self.show_position(following)

    def _saved(self, key: LabelKey, before: int | None, result: label_service.SetLabelResult) -> None:
        self.pending_saves.pop(key.item_ref, None)
        if result.outcome in ("created", "updated"):
            self.undo_stack.push(LabelActionCommand(
                self.context, key, before_version=before, after_version=result.label.version,
                after_data=result.label.label_data, text=f"label {key.item_ref} = {summarize(result.label.label_data)}",
                on_applied=self._after_undo_redo))
        status = "conflict" if result.label.review_state == "conflict" else "labeled"
        if self.model is not None:
            self.model.update_status(key.item_ref, status)
        self._update_progress()
        if result.outcome == "conflict":
            self.context.say(f"{key.item_ref}: someone else changed this label; your version is kept as a conflict "
                             "for review.")
        else:
            self.context.say(f"Saved {key.item_ref} ({result.outcome}, v{result.label.version}).")
        if self.item is not None and self.item.item_ref == key.item_ref:
            self._request_labels()  # the expert came back to it while it was saving: show it as stored

    def _save_failed(self, key: LabelKey, exc: BaseException) -> None:
        previous_status = self.pending_saves.pop(key.item_ref, "unlabeled")
        if self.model is not None:
            self.model.update_status(key.item_ref, previous_status)
        self._update_progress()
        self.open_item(key.item_ref)
        self.message.setText(f"<span style='color:{theme.DANGER}'>Not saved: {key.item_ref}: {exc}</span>")
        show_error(self, "Save label", exc)

    def rollback_selected(self) -> None:
        entry = self.history.currentItem()
        if entry is None or self.sheet is None or self.item is None or self.current_label is None:
            self.message.setText("Select a version in the history first.")
            return
        version = entry.data(Qt.ItemDataRole.UserRole)
        key = LabelKey(self.sheet.name, self.item.item_ref, self.label_type)
        before = self.current_label.version
        store, actor = self.context.store, self.context.user

        def done(info: LabelInfo) -> None:
            self.undo_stack.push(LabelActionCommand(
                self.context, key, before_version=before, after_version=info.version, after_data=info.label_data,
                text=f"roll back {key.item_ref} to v{version}", on_applied=self._after_undo_redo))
            self._after_undo_redo(key)

        self.context.run_change(
            f"Rolling back {key.item_ref}",
            lambda _p: label_service.rollback(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref,
                                              label_type=key.label_type, to_version=version),
            on_result=done)

    def _undo_text_changed(self, text: str) -> None:
        if shiboken6.isValid(self.undo_button):  # the stack emits while the page is being destroyed
            self.undo_button.setToolTip(f"Undo {text} (Ctrl+Z)")

    def _redo_text_changed(self, text: str) -> None:
        if shiboken6.isValid(self.redo_button):
            self.redo_button.setToolTip(f"Redo {text} (Ctrl+Shift+Z)")

    def undo(self) -> None:
        """Ctrl+Z: the last shape edit of this item if there is one, else the last saved label action."""
        shapes = self.form.shape_model if self.form is not None else None
        if shapes is not None and shapes.undo_stack.canUndo():
            shapes.undo_stack.undo()
            self.touched = True
            return
        self._undo_redo(self.undo_stack.undo, self.undo_stack.command(self.undo_stack.index() - 1))

    def redo(self) -> None:
        shapes = self.form.shape_model if self.form is not None else None
        if shapes is not None and shapes.undo_stack.canRedo():
            shapes.undo_stack.redo()
            self.touched = True
            return
        self._undo_redo(self.undo_stack.redo, self.undo_stack.command(self.undo_stack.index()))

    def _undo_redo(self, step, command) -> None:
        if self.saving or command is None:
            return
        step()
        if isinstance(command, LabelActionCommand) and command.error is not None:
            show_error(self, "Undo", command.error)

    def _after_undo_redo(self, key: LabelKey) -> None:
        """After an undo/redo/rollback: show the item it touched with its label as stored now."""
        if self.sheet is None or self.model is None or key.sheet != self.sheet.name:
            return
        if key.label_type != self.label_type:
            self.set_label_type(key.label_type, item=key.item_ref)
            return
        label = label_service.get_label(self.context.store, sheet=key.sheet, item_ref=key.item_ref,
                                        label_type=key.label_type)
        status = "unlabeled" if label is None else ("conflict" if label.review_state == "conflict" else "labeled")
        self.model.update_status(key.item_ref, status)
        self._update_progress()
        self.open_item(key.item_ref)

    def _type_title(self, name: str) -> str:
        index = self.type_combo.findData(name)
        return self.type_combo.itemText(index) if index >= 0 else name

    def _other_label_opened(self, entry: QListWidgetItem) -> None:
        label_type = entry.data(Qt.ItemDataRole.UserRole)
        if label_type:
            self.set_label_type(label_type)

    def _update_progress(self) -> None:
        if self.model is None or self.sheet is None:
            return
        labeled = sum(1 for s in self.model.statuses.values() if s == "labeled")
        conflicts = sum(1 for s in self.model.statuses.values() if s == "conflict")
        text = f"<b>{labeled + conflicts:,} / {self.sheet.item_count:,}</b> labeled"
        if conflicts:
            text += f" · <span style='color:{theme.DANGER}'>{conflicts} conflicting</span>"
        self.progress_label.setText(text)

    def on_changes(self, changes: Changes) -> None:
        if (changes.labels or changes.sheets) and not self.isVisible():
            self.stale = True  # reload statuses when the tool is opened again

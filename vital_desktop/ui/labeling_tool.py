"""The Canonical Labeling Tool (Mode B): label source items directly, once, for every reuse.

Keyboard first: number keys pick a class (1–9, 0; a class's own shortcut key), letters typed on
the image filter a long class list, Enter saves and moves to the next unlabeled item, arrows
move, Ctrl+Z / Ctrl+Shift+Z undo and redo (a shape edit first, then saved label actions),
Escape closes (the keys are declared in `ui.actions`). After every save the keyboard is back
on the image, so the next digit picks a class, never a character in a text field.

Geometry label types (boxes, polygons, points) are drawn and edited on the canvas
(`ui.image_view`), their classes and colours taken from the label type; shapes are checked
against the image (`core.geometry.check_shapes`) before a save.

The page never touches the store: sheets, statuses and labels are read in the background and
saves go to the writer thread (`ui.label_ops`; the acting part is `ui.label_actions`). The next
items' images are decoded in the background while the expert looks at the current one. Its
widgets are three parts: the header and the item pane (`ui.labeling_panes`) and the side panel
(`ui.label_side_panel`); this module opens, shows and navigates.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import shiboken6

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QApplication, QScrollArea, QSplitter, QVBoxLayout, QWidget

from vital_desktop.core.changes import Changes
from vital_desktop.services import label_queries
from vital_desktop.services import label_types as label_type_service
from vital_desktop.services import labels as label_service
from vital_desktop.services import sheets as sheet_service
from vital_desktop.services.label_types import LabelType
from vital_desktop.services.labels import LabelInfo
from vital_desktop.services.sheets import ItemInfo, SheetInfo
from vital_desktop.ui import label_ops, theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.class_chooser import TOOL_HINTS as HINTS
from vital_desktop.ui.data_page import item_grid_view
from vital_desktop.ui.item_models import ItemGridModel, ItemPager, PositionRole
from vital_desktop.ui.item_views import context_items, shows_content
from vital_desktop.ui.label_actions import CLAIM_BATCH, LabelActions
from vital_desktop.ui.label_side_panel import LabelSidePanel, summarize
from vital_desktop.ui.labeling_panes import ItemPane, ToolHeader
from vital_desktop.ui.pages import Page
from vital_desktop.ui.schema_form import SchemaForm
from vital_desktop.ui.shape_model import DIGIT_KEYS
from vital_desktop.ui.widgets import show_error

__all__ = ["CLAIM_BATCH", "CanonicalLabelingTool", "summarize"]

PREFETCH_AHEAD = 3


class CanonicalLabelingTool(Page):
    """Pick a sheet and a label type; label items with the keyboard; see history and other labels."""

    stage = "canonical"
    title = "Canonical Labels"
    #: emitted when an item's image is on screen (the latency benchmark listens)
    item_shown = Signal(str)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.sheet: SheetInfo | None = None
        #: the label type shown; "" until the first sheet resolves it (the type most of its labels
        #: have, else the site's first: `label_queries.default_label_type`)
        self.label_type = ""
        self.label_types: dict[str, LabelType] = {}
        self.pager: ItemPager | None = None
        #: the position asked for whose page of items is still being read
        self._waiting_position: int | None = None
        self.model: ItemGridModel | None = None
        self.position: int | None = None
        self.item: ItemInfo | None = None
        self.current_label: LabelInfo | None = None
        self.pending_saves: dict[str, str] = {}  # item_ref -> its status before the save (in flight)
        self.stale = False
        self.loading = False  # a sheet or label type is being read in the background
        self.labels_ready = False
        self.save_when_ready = False  # Enter came before the item's label: save once it is known
        self.undoing = False  # an undo/redo is on its way to the store
        self.touched = False
        self.queue: list[str] = []  # items suggested by "Label next", best first
        self.form: SchemaForm | None = None
        self.undo_stack = QUndoStack(self)
        self.image_misses = 0  # images decoded on the GUI thread because the prefetch had not finished
        self.save_started = 0.0
        self.acting = LabelActions(self)
        self._build()
        context.images.image_ready.connect(self._image_ready)

    # --- actions (the store side lives in `label_actions`) ----------------------------------------
    @property
    def saving(self) -> bool:
        """True while a save is on its way to the store."""
        return bool(self.pending_saves)

    def save_and_next(self) -> None:
        """Enter: save the form and move on to the next unlabeled item (see `LabelActions`)."""
        self.acting.save_and_next()

    def claim_next(self) -> None:
        self.acting.claim_next()

    def rollback_selected(self) -> None:
        self.acting.rollback_selected()

    def confirm_unchanged(self) -> None:
        self.acting.confirm_unchanged()

    def undo(self) -> None:
        self.acting.undo()

    def redo(self) -> None:
        self.acting.redo()

    @property
    def ready(self) -> bool:
        """A sheet, a label type and an item are on screen and nothing is being loaded."""
        return not self.loading and self.form is not None and self.item is not None

    # --- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(20, 14, 20, 14)
        root.setSpacing(theme.SPACING)
        self.header = header = ToolHeader()
        self.sheet_combo, self.type_combo, self.filter_combo = header.sheet_combo, header.type_combo, header.filter_combo
        header.sheet_combo.activated.connect(lambda _i: self.open_sheet(header.sheet_combo.currentText()))
        header.type_combo.activated.connect(lambda _i: self.set_label_type(header.type_combo.currentData()))
        header.filter_combo.activated.connect(lambda _i: self.set_filter(header.filter_combo.currentData()))
        header.claim_button.clicked.connect(self.claim_next)
        header.close_button.clicked.connect(self.close_tool)
        self.progress_label, self.claim_button = header.progress_label, header.claim_button
        root.addWidget(header)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.grid = item_grid_view()
        self.grid.setMinimumWidth(160)
        self.grid.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.grid.clicked.connect(self._grid_clicked)
        splitter.addWidget(self.grid)
        self.pane = pane = ItemPane(self.context)
        pane.suggest_button.clicked.connect(self.suggest_next)
        pane.image_view.text_typed.connect(self._typed)
        pane.content_view.text_typed.connect(self._typed)
        self.item_title, self.item_status, self.position_label = pane.item_title, pane.item_status, pane.position_label
        self.suggest_button, self.image_view, self.view_stack = pane.suggest_button, pane.image_view, pane.view_stack
        self.content_view, self.context_label, self.hint = pane.content_view, pane.context_label, pane.hint
        splitter.addWidget(pane)
        self.side = LabelSidePanel()
        self.side.other_type_opened.connect(lambda name: self.set_label_type(name))
        self.side.save_button.clicked.connect(self.save_and_next)
        self.side.undo_button.clicked.connect(self.undo)
        self.side.redo_button.clicked.connect(self.redo)
        self.side.rollback_button.clicked.connect(self.rollback_selected)
        self.side.confirm_button.clicked.connect(self.confirm_unchanged)
        self.undo_stack.canUndoChanged.connect(self.side.undo_button.setEnabled)
        self.undo_stack.canRedoChanged.connect(self.side.redo_button.setEnabled)
        self.undo_stack.undoTextChanged.connect(self.acting._undo_text_changed)
        self.undo_stack.redoTextChanged.connect(self.acting._redo_text_changed)
        side = self.side
        self.form_box, self.form_layout, self.notes, self.usage = side.form_box, side.form_layout, side.notes, side.usage
        self.confidence_group, self.message, self.history = side.confidence_group, side.message, side.history
        self.other_labels, self.rollback_button = side.other_labels, side.rollback_button
        self.save_button, self.undo_button, self.redo_button = side.save_button, side.undo_button, side.redo_button
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(side)
        scroll.setMinimumWidth(340)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        splitter.addWidget(scroll)
        splitter.setSizes([300, 620, 400])
        splitter.setStretchFactor(1, 1)
        root.addWidget(splitter, 1)
        self.splitter = splitter

    # --- opening ------------------------------------------------------------------------------
    def activate(self, **arguments: Any) -> None:
        """Read the sheets and label types (in the background), then open the wanted sheet and item."""
        self.loading = True
        label_ops.query(self.context, "sheets", lambda op: (
            [s.name for s in sheet_service.list_sheets(op.store)], label_type_service.list_label_types(op.store)),
            on_result=lambda result: self._listed(result[0], result[1], arguments), on_error=self._load_failed,
            key="tool-sheets", owner=self)
        self.image_view.setFocus()

    def _listed(self, sheets: list[str], types: dict[str, LabelType], arguments: dict) -> None:
        self.loading = False
        self.label_types = dict(types)
        self.header.set_label_types(self.label_types)
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
        else:
            self.type_combo.setCurrentIndex(self.type_combo.findData(self.label_type))
            if arguments.get("item"):
                self.open_item(arguments["item"])
        self.stale = False

    def _load_failed(self, exc: BaseException) -> None:
        self.loading = False
        show_error(self, "Canonical labels", exc)

    def open_sheet(self, name: str, *, item: str | None = None) -> None:
        """Open a sheet (read in the background) with the current label type."""
        self.loading = True
        label_ops.query(self.context, "sheet", lambda op: sheet_service.get_sheet(op.store, name),
                        on_result=lambda sheet: self._sheet_opened(sheet, item), on_error=self._load_failed,
                        key="tool-sheet", owner=self)

    def _sheet_opened(self, sheet: SheetInfo, item: str | None) -> None:
        self.sheet = sheet
        self.sheet_combo.setCurrentText(sheet.name)
        self.sheet_combo.setToolTip(sheet.name)
        self.usage.set_tags(sheet.classification)
        self.pager = ItemPager(self.context, sheet.name, sheet.item_count, parent=self)
        self.pager.page_loaded.connect(self._page_arrived)
        self.model = ItemGridModel(self.context, self.pager, parent=self)
        self.grid.setModel(self.model)
        self.undo_stack.clear()
        self.item = None
        self.queue = []
        self.set_label_type(self.label_type, item=item)

    def set_label_type(self, name: str, *, item: str | None = None) -> None:
        """Switch the label type: new form, statuses and progress (read in the background); keep
        the item if one is shown."""
        sheet = self.sheet.name if self.sheet is not None else None
        self.loading = True
        self.label_type = name  # a sheet opened meanwhile opens with this type
        self.queue = []  # suggestions were for the previous type

        def read(op: Any) -> tuple:
            chosen = name or label_queries.default_label_type(op.store, sheet=sheet)
            label_type = label_type_service.get_label_type(op.store, chosen)
            if sheet is None:
                return chosen, label_type, None, None
            statuses = label_service.item_status(op.store, sheet=sheet, label_type=chosen)
            return chosen, label_type, sheet_service.item_refs(op.store, sheet), statuses, Counter(statuses.values())

        label_ops.query(self.context, "label type", read, on_result=lambda result: self._type_loaded(
            result[0], item, *result[1:]), on_error=self._load_failed, key="tool-type", owner=self)

    def _type_loaded(self, name: str, item: str | None, label_type: LabelType, refs: list[str] | None,
                     statuses: dict[str, str] | None, counts: Counter[str] | None = None) -> None:
        self.loading = False
        self.label_type = name
        if self.type_combo.findData(name) < 0:
            self.type_combo.addItem(label_type.title, name)
        self.type_combo.setCurrentIndex(self.type_combo.findData(name))
        self._build_form(label_type)
        if self.sheet is None or self.model is None or refs is None or statuses is None:
            return
        self.model.set_statuses(refs, statuses, counts)
        self.model.set_filter(self.filter_combo.currentData())
        self._update_progress()
        keep = item or (self.item.item_ref if self.item is not None else None)
        if keep:
            self.open_item(keep)
        else:
            first = self._next_unlabeled(-1)
            self.show_position(first if first is not None else 0)

    def _build_form(self, label_type: LabelType) -> None:
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
        self.side.set_form_title(f"Label — {label_type.title}")
        self.image_view.set_shape_model(self.form.shape_model)
        hint = HINTS.get(self.form.shape_kind, HINTS[None])
        if len(self.form.classes) > len(DIGIT_KEYS):
            count = len(self.form.classes)
            hint = hint.replace("1–9 pick a class", f"1–9, 0 pick one of the first ten of {count} classes · type a "
                                "name to filter", 1).replace("1–9 class", f"1–9, 0 class (first ten of {count}) · "
                                                             "type a name to filter", 1)
        self.hint.setText(hint)
        self.image_view.setFocus()  # the keyboard's home: digits, letters (filter), Enter, Backspace

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
        if self.pager is None or self.model is None or self.sheet is None or self.form is None:
            return
        if not 0 <= position < self.pager.total:
            return
        item = self.pager.item(position)  # None: its page is being read off the GUI thread
        if item is None:
            self._waiting_position = position
            return
        self._waiting_position = None
        self.position = position
        self.item = item
        self.save_when_ready = False
        self._show_image(item)
        self.item_title.setText(item.item_ref)
        self.position_label.setText(f"{position + 1:,} / {self.pager.total:,}")
        context = context_items(item.metadata, (self.sheet.key_column, self.sheet.image_column))
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

    def _page_arrived(self, first: int, last: int) -> None:
        """A page of items was read: show the item that was waiting for it, prefetch around it."""
        waiting = self._waiting_position
        if waiting is not None and first <= waiting <= last:
            self.show_position(waiting)
        self._prefetch_neighbours()

    def _show_image(self, item: ItemInfo) -> None:
        if self.sheet is not None and shows_content(self.sheet.item_kind):
            focused = self.image_view.hasFocus()
            self.view_stack.setCurrentWidget(self.content_view)
            self.content_view.show_item(self.sheet.name, item.item_ref)
            if focused or self.focusWidget() is None:
                self.content_view.setFocus()
            return
        self.view_stack.setCurrentWidget(self.image_view)
        path = item.absolute_image_path
        if not path or item.missing:
            self.image_view.show_pixmap(None, "image missing" if item.missing else "this sheet has no images")
            return
        self.context.images.expect(item)  # the image-access guard checks it against the sheet's index
        pixmap = self.context.images.image(path)
        if pixmap is None:
            self.image_misses += 1
            pixmap = self.context.images.image_now(path)
        self.image_view.show_pixmap(pixmap, self.context.images.refused.get(path, "cannot read the image file"))

    def _image_ready(self, path: str) -> None:
        """Nothing to do for prefetched neighbours; only repaint if the current image just arrived."""
        if self.item is not None and self.item.absolute_image_path == path and not self.image_view.has_image():
            self._show_image(self.item)

    def _request_labels(self) -> None:
        """Load the item's labels in the background: the image is already on screen."""
        assert self.item is not None and self.sheet is not None
        self.labels_ready = False
        self.touched = False
        item_ref, label_type, sheet = self.item.item_ref, self.label_type, self.sheet.name

        def fetch(op: Any) -> tuple[list[LabelInfo], list]:
            all_labels = label_service.item_labels(op.store, sheet=sheet, item_ref=item_ref)
            versions = []
            if any(lab.label_type == label_type for lab in all_labels):
                versions = label_service.history(op.store, sheet=sheet, item_ref=item_ref, label_type=label_type)
            return all_labels, versions

        label_ops.query(self.context, "labels", fetch, key="tool-labels", owner=self,
                        on_result=lambda result: self._labels_arrived(item_ref, label_type, result))

    def _labels_arrived(self, item_ref: str, label_type: str, result: tuple[list[LabelInfo], list]) -> None:
        if self.item is None or self.item.item_ref != item_ref or self.label_type != label_type:
            return  # the expert moved on meanwhile
        self._apply_labels(*result)
        if self.save_when_ready:
            self.save_when_ready = False
            self.save_and_next()

    def _apply_labels(self, all_labels: list[LabelInfo], versions: list) -> None:
        assert self.sheet is not None and self.item is not None and self.form is not None
        self.labels_ready = True
        self.current_label = next((lab for lab in all_labels if lab.label_type == self.label_type), None)
        label = self.current_label
        if not self.touched:  # a class picked before the label arrived keeps the expert's input
            self.form.blockSignals(True)
            self.form.set_value(label.label_data if label else None)
            self.form.blockSignals(False)
            self.side.set_details(label)
        status = "unlabeled" if label is None else ("conflict" if label.review_state == "conflict" else "labeled")
        self.pane.show_status(status, f" · v{label.version} by {label.updated_by}" if label else "")
        self.side.show_labels(label, all_labels, versions, label_type=self.label_type, type_title=self._type_title)

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
                self.context.images.expect(item)
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

    def suggest_next(self) -> None:
        """Fill the queue with the items the classifier would learn most from, and open the first."""
        from vital_desktop.ui.label_next import suggest_for_tool

        suggest_for_tool(self)

    def _next_unlabeled(self, after: int) -> int | None:
        """The suggested order first (skipping what got labeled meanwhile), else the next unlabeled item."""
        if self.model is None:
            return None
        return self.model.next_unlabeled(after, self.queue, self.item.item_ref if self.item is not None else None)

    def close_tool(self) -> None:
        """Escape: drop an open polygon, else close the tool."""
        if self.form is not None and self.form.shape_model is not None and self.form.shape_model.cancel_drawing():
            return
        self.context.navigate("back")

    def _refuse(self, text: str) -> None:
        self.message.setText(f"<span style='color:{theme.DANGER}'>{text}</span>")
        self.image_view.setFocus()

    # --- choosing classes -----------------------------------------------------------------------
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

    def _type_title(self, name: str) -> str:
        known = self.label_types.get(name)
        if known is not None:
            return known.title
        index = self.type_combo.findData(name)
        return self.type_combo.itemText(index) if index >= 0 else name

    def _update_progress(self) -> None:
        if self.model is not None and self.sheet is not None:
            self.header.show_progress(self.model.status_counts, self.sheet.item_count)

    def on_changes(self, changes: Changes) -> None:
        if (changes.labels or changes.sheets) and not self.isVisible():
            self.stale = True  # reload statuses when the tool is opened again
        if changes.label_types:  # edited on the Taxonomy page, or by the CLI over the bridge
            label_ops.query(self.context, "label types", lambda op: label_type_service.list_label_types(op.store),
                            on_result=self._label_types_changed, key="tool-types", owner=self)

    def _label_types_changed(self, types: dict[str, LabelType]) -> None:
        """New label-type versions: refresh the list and, when the shown type changed, rebuild its
        form on the same item with the expert's unsaved work put back (and the keyboard where it was)."""
        self.label_types = dict(types)
        self.header.set_label_types(self.label_types, self.label_type)
        new = self.label_types.get(self.label_type)
        if self.form is None or new is None or new == self.form.label_type:
            return
        unsaved, focus = self.form.value(), QApplication.focusWidget()
        self._build_form(new)
        self.form.blockSignals(True)
        self.form.set_value(unsaved)
        self.form.blockSignals(False)
        if focus is not None and shiboken6.isValid(focus) and focus.isVisible():
            focus.setFocus()
        self.message.setText(f"{new.title} is now version {new.version} (changed elsewhere); your unsaved work "
                             "on this item is kept.")

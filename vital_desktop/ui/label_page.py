"""LABEL stage, Mode A: review the Q&A pairs of a training sheet.

Left: training sheets with the seeds' progress block (pre-approved from canonical labels; needs
review: unlabeled / rejected / flagged) and bulk actions by confidence with a preview count.
Right: one pair at a time — the image (zoom and pan), the AI answer and its confidence beside
the item's canonical label as it is now, the sensor context, the rendered prompt — with Approve
(A), Edit (E), Reject (R), Flag (F). Approving creates or versions the item's canonical label in
the same transaction (the service does it).

Keyboard first: the image is the keyboard's home and every action hands focus back to it, so
the next A/R/F is an action, never a letter typed into the reason field. Shift+R / Shift+F (or a
click) put the cursor in the reason field; Enter there performs that action (Reject when none
was chosen), Escape leaves it. The "Needs review" list holds exactly the pairs the progress
block counts as needing review, and a pair that leaves the list when reviewed is taken out of
it, so "1 / 157" and "Needs review 157" always agree.

The page never touches the store: reads and writes run as background operations (`label_ops`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QSplitter, QVBoxLayout, QWidget

from vital_desktop.core.changes import Changes
from vital_desktop.services import generate as generate_service
from vital_desktop.services import label_types as label_type_service
from vital_desktop.services import labels as label_service
from vital_desktop.services import review as review_service
from vital_desktop.services import sheets as sheet_service
from vital_desktop.services.generate import GenerationSummary, TrainingSheetInfo
from vital_desktop.services.review import PairInfo
from vital_desktop.services.sheets import ItemInfo
from vital_desktop.ui import label_ops
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.generate_page import messages_text
from vital_desktop.ui.item_views import context_items, shows_content
from vital_desktop.ui.pages import Page
from vital_desktop.ui.pair_card import REASON_HINT, PairCard
from vital_desktop.ui.review_widgets import BulkPanel, EditAnswerDialog, progress_html
from vital_desktop.ui.shape_model import ShapeModel, class_specs, geometry_kind
from vital_desktop.ui.widgets import Card, error_text, page_layout

NEEDS_REVIEW = ("unlabeled", "rejected", "flagged")
FILTER_STATUSES: dict[str | None, tuple[str, ...] | None] = {
    "needs_review": NEEDS_REVIEW, None: None, **{s: (s,) for s in ("unlabeled", "labeled", "rejected", "flagged")}}
TrainingSheetRole = Qt.ItemDataRole.UserRole + 20

#: Pairs loaded at a time on the review page.
PAIR_PAGE = 200


class LabelPage(Page):
    """Training sheets and the review of their pairs."""

    stage = "label"
    title = "LABEL"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.training_sheets: list[TrainingSheetInfo] = []
        self.current: TrainingSheetInfo | None = None
        self.summary: GenerationSummary | None = None
        self.pairs: list[PairInfo] = []  # the loaded page
        self.items: dict[str, ItemInfo] = {}  # the loaded page's items (images, sensor context)
        self.refs: list[str] = []  # every pair's item ref under the current filter, in order
        self.page_offset = 0
        self.index = -1
        self.busy = False  # a review action or a page load is on its way
        self.armed: str | None = None  # the action Enter in the reason field performs
        self.edit_dialog: EditAnswerDialog | None = None
        self._pending_item: str | None = None  # a deep-linked item to show once its training sheet loads
        self.shapes: ShapeModel | None = None  # the AI answer's shapes, for geometry label types
        root, _header = page_layout(self, "Review training sheets",
                                    "Mode A: approve AI answers to create canonical labels. Mode B: the Canonical "
                                    "Labels button.")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_left())
        splitter.addWidget(self._build_review())
        splitter.setSizes([340, 940])
        splitter.setStretchFactor(1, 1)
        root.addWidget(splitter, 1)
        context.images.image_ready.connect(self._image_ready)
        self.reload()

    # --- layout ---------------------------------------------------------------------------------
    def _build_left(self) -> QWidget:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        sheets_card = Card("Training sheets")
        self.sheet_list = QListWidget()
        self.sheet_list.setWordWrap(True)
        self.sheet_list.currentItemChanged.connect(self._sheet_selected)
        sheets_card.body.addWidget(self.sheet_list)
        left_layout.addWidget(sheets_card, 2)
        progress_card = Card("Progress")
        self.progress = QLabel("")
        self.progress.setTextFormat(Qt.TextFormat.RichText)
        progress_card.body.addWidget(self.progress)
        left_layout.addWidget(progress_card)
        self.bulk = BulkPanel(self.context)
        self.bulk.applied.connect(lambda: self.load_pairs())
        left_layout.addWidget(self.bulk)
        return left

    def _build_review(self) -> QWidget:
        self.card = card = PairCard(self.context)
        card.filter.activated.connect(lambda _i: self.load_pairs())
        card.reason.returnPressed.connect(self._reason_entered)
        handlers = {"approve": self.approve, "edit": self.edit, "reject": self.reject, "flag": self.flag}
        for name, button in card.buttons.items():
            button.clicked.connect(handlers[name])
        card.previous_button.clicked.connect(self.previous_pair)
        card.next_button.clicked.connect(self.next_pair)
        self.pair_title, self.pair_state, self.filter = card.pair_title, card.pair_state, card.filter
        self.position_label, self.image_view, self.view_stack = card.position_label, card.image_view, card.view_stack
        self.content_view, self.answer, self.canonical = card.content_view, card.answer, card.canonical
        self.sensor, self.prompt, self.reason = card.sensor, card.prompt, card.reason
        self.buttons, self.message = card.buttons, card.message
        return card

    # --- training sheets ------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        """Read the training sheets (in the background) and select `select` or the current one."""
        select = select or (self.current.name if self.current else None)
        label_ops.query(self.context, "training sheets",
                        lambda op: generate_service.list_training_sheets(op.store),
                        on_result=lambda sheets: self._fill_sheets(sheets, select), key="review-sheets", owner=self)

    def _fill_sheets(self, sheets: list[TrainingSheetInfo], select: str | None) -> None:
        self.training_sheets = sheets
        self.sheet_list.blockSignals(True)
        self.sheet_list.clear()
        for info in sheets:
            entry = QListWidgetItem(f"{info.name}\n{info.sheet_name} · {info.template_name} v{info.template_version}"
                                    f" · {info.total_items:,} items · {info.status}")
            entry.setData(TrainingSheetRole, info)
            self.sheet_list.addItem(entry)
        self.sheet_list.blockSignals(False)
        names = [t.name for t in sheets]
        if select in names:
            self.sheet_list.setCurrentRow(names.index(select))
        elif names:
            self.sheet_list.setCurrentRow(0)
        else:
            self.show_training_sheet(None)

    def _sheet_selected(self, entry: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        keep, self._pending_item = self._pending_item, None
        self.show_training_sheet(entry.data(TrainingSheetRole) if entry is not None else None, keep=keep)

    def show_training_sheet(self, info: TrainingSheetInfo | None, *, keep: str | None = None) -> None:
        self.current = info
        self.bulk.set_training_sheet(info.name if info else None)
        if info is None:
            self.summary = None
            self.progress.setText("No training sheets yet: generate one on the GENERATE page.")
            self.pairs, self.refs, self.page_offset = [], [], 0
            self.show_pair(-1)
            return
        self.load_pairs(keep=keep)

    def update_progress(self) -> None:
        """Re-read the progress block (after a change elsewhere)."""
        if self.current is None:
            return
        name = self.current.name
        label_ops.query(self.context, "review progress", lambda op: generate_service.summary(op.store, name),
                        on_result=self._show_summary, key="review-summary", owner=self)

    def _show_summary(self, summary: GenerationSummary) -> None:
        if self.current is not None and summary.name == self.current.name:
            self.summary = summary
            self.progress.setText(progress_html(summary))
            self._show_position()

    def load_pairs(self, keep: str | None = None) -> None:
        """Load the progress, the filter's pair list and the page that holds `keep` (or the first
        page), in one background read; pairs come a page at a time, so a 100,000-pair training
        sheet opens as fast as a small one."""
        if self.current is None:
            return
        name, sheet, type_name = self.current.name, self.current.sheet_name, self.current.label_type
        statuses = FILTER_STATUSES.get(self.filter.currentData())

        def read(op: Any) -> tuple:
            try:
                label_type = label_type_service.get_label_type(op.store, type_name)
            except Exception:  # noqa: BLE001 - a type removed since: the pairs still show, without shapes
                label_type = None
            summary = generate_service.summary(op.store, name)
            refs = review_service.pair_refs(op.store, training_sheet=name, status=statuses)
            position = refs.index(keep) if keep in refs else 0
            offset = position - position % PAIR_PAGE
            pairs, items = self._read_page(op.store, name, sheet, refs[offset:offset + PAIR_PAGE])
            return summary, refs, offset, position, pairs, items, label_type

        self.busy = True
        label_ops.query(self.context, "pairs", read, on_result=self._pairs_loaded, on_error=self._failed,
                        key="review-pairs", owner=self)

    @staticmethod
    def _read_page(store: Any, name: str, sheet: str, refs: list[str]) -> tuple[list[PairInfo], dict]:
        """One page of pairs (by item ref, so pairs reviewed meanwhile do not shift it) and their items."""
        if not refs:
            return [], {}
        pairs = review_service.list_pairs(store, training_sheet=name, item_refs=refs, limit=None)
        try:
            items = {i.item_ref: i for i in sheet_service.list_items(store, sheet, item_refs=refs, limit=None)}
        except Exception:  # noqa: BLE001 - the sheet may have changed; the pairs still show
            items = {}
        return pairs, items

    def _pairs_loaded(self, result: tuple) -> None:
        self.busy = False
        summary, self.refs, self.page_offset, position, self.pairs, self.items, label_type = result
        kind = geometry_kind(label_type) if label_type is not None else None
        self.image_view.set_shape_model(None)
        if self.shapes is not None:
            self.shapes.deleteLater()
        self.shapes = ShapeModel(kind, class_specs(label_type), self) if kind is not None else None
        self._show_summary(summary)
        self.show_pair(position - self.page_offset if self.pairs else -1)

    def _load_page(self, offset: int, then_index: int | str) -> None:
        """Load the page starting at `offset`; show its first pair (0), or its last ("last")."""
        assert self.current is not None
        name, sheet = self.current.name, self.current.sheet_name
        refs = self.refs[offset:offset + PAIR_PAGE]

        def loaded(result: tuple[list[PairInfo], dict]) -> None:
            self.busy = False
            self.page_offset = offset
            self.pairs, self.items = result
            self.show_pair(len(self.pairs) - 1 if then_index == "last" else int(then_index))

        self.busy = True
        label_ops.query(self.context, "pairs", lambda op: self._read_page(op.store, name, sheet, refs),
                        on_result=loaded, on_error=self._failed, key="review-pairs", owner=self)

    def on_changes(self, changes: Changes) -> None:
        if changes.training_sheets:
            self.reload()
        elif (changes.pairs or changes.labels) and self.current is not None and not self.busy:
            self.update_progress()

    def activate(self, **arguments: Any) -> None:
        wanted = arguments.get("training_sheet")
        item = arguments.get("item")
        if item:
            self.filter.setCurrentIndex(self.filter.findData(None))
        if wanted and (self.current is None or self.current.name != wanted) or self.current is None:
            self._pending_item = item
            self.reload(select=wanted)
        elif item:
            self.load_pairs(keep=item)
        else:
            self.update_progress()
        self.image_view.setFocus()

    def pair_for(self, item_ref: str) -> PairInfo | None:
        """The loaded pair of an item (for tests and deep links)."""
        return next((p for p in self.pairs if p.item_ref == item_ref), None)

    # --- one pair ---------------------------------------------------------------------------------
    @property
    def pair(self) -> PairInfo | None:
        return self.pairs[self.index] if 0 <= self.index < len(self.pairs) else None

    def _show_position(self) -> None:
        if self.pair is None:
            self.position_label.setText("")
            return
        noun = self.filter.currentText().lower()
        self.position_label.setText(f"{self.page_offset + self.index + 1:,} / {len(self.refs):,} {noun}")

    def show_pair(self, index: int) -> None:
        self.index = index
        pair = self.pair
        for button in self.buttons.values():
            button.setEnabled(pair is not None)
        if pair is None or self.current is None:
            self.card.show_empty("Nothing to review with this filter" if self.current else "")
            return
        self.card.show_pair_texts(pair)
        self._show_position()
        self._request_canonical(pair)
        if self.shapes is not None:  # a geometry answer: its shapes over the image, in their class colours
            answer_shapes = pair.answer.get(self.shapes.kind) if isinstance(pair.answer, dict) else None
            self.shapes.set_shapes(answer_shapes if isinstance(answer_shapes, list) else [])
        self.image_view.set_shape_model(self.shapes, editable=False)
        self.prompt.setPlainText(messages_text(pair.messages))
        item = self.items.get(pair.item_ref)
        if item is not None and shows_content(item.metadata.get("item_kind")):
            self.sensor.setText("  ·  ".join(context_items(item.metadata)))
            self.view_stack.setCurrentWidget(self.content_view)
            self.content_view.show_item(self.current.sheet_name, item.item_ref)
        elif item is not None:
            self.view_stack.setCurrentWidget(self.image_view)
            self.sensor.setText("  ·  ".join(f"{k}: {v}" for k, v in item.metadata.items()))
            path = item.absolute_image_path
            pixmap = self.context.images.image(path) if path else None
            self.image_view.show_pixmap(pixmap, "loading image…" if path else "no image")
            if path and pixmap is None:
                self.context.images.prefetch(path)
            for ahead in self.pairs[index + 1:index + 3]:
                following = self.items.get(ahead.item_ref)
                if following is not None and following.absolute_image_path:
                    self.context.images.prefetch(following.absolute_image_path)
        else:
            self.sensor.setText("")
            self.image_view.show_pixmap(None, "no image")
        self.message.setText("")

    def _image_ready(self, path: str) -> None:
        item = self.items.get(self.pair.item_ref) if self.pair is not None else None
        if item is not None and item.absolute_image_path == path and not self.image_view.has_image():
            self.image_view.show_pixmap(self.context.images.image(path), "no image")

    def _request_canonical(self, pair: PairInfo) -> None:
        """Show the item's canonical label as it is now, beside the AI answer (the pair carries it;
        read in the background when it does not)."""
        assert self.current is not None
        if pair.current_label_version is None:
            self.card.show_canonical(pair.answer, None, None, None)
            return
        data = getattr(pair, "current_label_data", None)
        if data is not None:
            self._show_canonical(pair.item_ref, data, pair.current_label_version, getattr(pair, "current_label_by", ""))
            return
        self.card.show_canonical_pending(pair.current_label_version)
        sheet, label_type, item_ref = self.current.sheet_name, self.current.label_type, pair.item_ref

        def arrived(label: label_service.LabelInfo | None) -> None:
            if label is None:
                self._show_canonical(item_ref, None, None, None)
            else:
                self._show_canonical(item_ref, label.label_data, label.version, label.updated_by)

        label_ops.query(self.context, "canonical label", lambda op: label_service.get_label(
            op.store, sheet=sheet, item_ref=item_ref, label_type=label_type), on_result=arrived,
            key="review-canonical", owner=self)

    def _show_canonical(self, item_ref: str, data: dict | None, version: int | None, by: str | None) -> None:
        pair = self.pair
        if pair is not None and pair.item_ref == item_ref:
            self.card.show_canonical(pair.answer, data, version, by)

    def next_pair(self) -> None:
        if self.busy:
            return
        if self.index + 1 < len(self.pairs):
            self.show_pair(self.index + 1)
        elif self.current is not None and self.page_offset + len(self.pairs) < len(self.refs):
            self._load_page(self.page_offset + len(self.pairs), 0)

    def previous_pair(self) -> None:
        if self.busy:
            return
        if self.index > 0:
            self.show_pair(self.index - 1)
        elif self.current is not None and self.page_offset > 0:
            self._load_page(max(0, self.page_offset - PAIR_PAGE), "last")

    def back(self) -> None:
        """Escape: leave the reason field (keeping its text), else go to the training sheets."""
        if self.reason.hasFocus():
            self._disarm()
            self.image_view.setFocus()
            return
        self.sheet_list.setFocus()

    # --- review actions ----------------------------------------------------------------------------
    def _review(self, title: str, call, *, describe, dialog: EditAnswerDialog | None = None) -> None:
        pair = self.pair
        if pair is None or self.busy:
            return
        self.busy = True
        statuses = FILTER_STATUSES.get(self.filter.currentData())

        def done(outcome: review_service.ReviewOutcome) -> None:
            self.busy = False
            if dialog is not None:
                dialog.done_ok()
            self.context.say(describe(outcome))
            self.update_progress()
            at = self.pairs.index(pair) if pair in self.pairs else self.index
            if statuses is not None and outcome.pair.status not in statuses:
                self._drop(at)  # it left this list: the next pair slides into its place
            else:
                self.pairs[at] = outcome.pair
                if at + 1 < len(self.pairs) or self.page_offset + len(self.pairs) < len(self.refs):
                    self.index = at
                    self.next_pair()
                else:
                    self.show_pair(at)  # the last pair: stay on it
            self.message.setText(describe(outcome))
            self._home()

        def failed(exc: BaseException) -> None:
            self.busy = False
            if dialog is not None:
                dialog.refused(error_text(exc))
                return
            self.card.show_error(error_text(exc))
            self._home()

        label_ops.change(self.context, title, lambda op: call(op.store, op.actor, pair.id), on_result=done,
                         on_error=failed, owner=self)

    def _drop(self, at: int) -> None:
        """Take a reviewed pair out of the list it no longer belongs to."""
        ref = self.pairs[at].item_ref
        del self.pairs[at]
        if ref in self.refs:
            self.refs.remove(ref)
        if at < len(self.pairs):
            self.show_pair(at)
        elif self.page_offset + len(self.pairs) < len(self.refs):
            self._load_page(self.page_offset + len(self.pairs), 0)
        else:
            self.show_pair(len(self.pairs) - 1)

    def _home(self) -> None:
        """Hand the keyboard back to the pair (never leave it in the reason field)."""
        self._disarm()
        self.image_view.setFocus()

    def _failed(self, exc: BaseException) -> None:
        self.busy = False
        self.card.show_error(error_text(exc))

    def approve(self) -> None:
        self._review("Approving", lambda store, actor, pid: review_service.approve(store, actor=actor, pair_id=pid),
                     describe=self._approved_text)

    def edit(self) -> None:
        pair = self.pair
        if pair is None or self.busy:
            return
        dialog = EditAnswerDialog(pair.answer, self)
        self.edit_dialog = dialog

        def submitted(answer: dict) -> None:
            self._review("Approving edited answer",
                         lambda store, actor, pid: review_service.edit_and_approve(store, actor=actor, pair_id=pid,
                                                                                    answer=answer),
                         describe=self._approved_text, dialog=dialog)

        dialog.submitted.connect(submitted)
        dialog.finished.connect(lambda _r: self._home())
        dialog.open()

    def _reason(self, default: str) -> str:
        text = self.reason.text().strip()
        self.reason.clear()
        return text or default

    def reject(self) -> None:
        reason = self._reason("rejected in review")
        self._review("Rejecting", lambda store, actor, pid: review_service.reject(store, actor=actor, pair_id=pid,
                                                                                   reason=reason),
                     describe=lambda o: f"Rejected {o.pair.item_ref}: {reason}")

    def flag(self) -> None:
        reason = self._reason("flagged for a second opinion")
        self._review("Flagging", lambda store, actor, pid: review_service.flag(store, actor=actor, pair_id=pid,
                                                                                reason=reason),
                     describe=lambda o: f"Flagged {o.pair.item_ref}: {reason}")

    def ask_reason(self, action: str) -> None:
        """Shift+R / Shift+F: type the reason; Enter performs `action`, Escape leaves the field."""
        if self.pair is None:
            return
        self.armed = action
        verb = {"reject": "rejects", "flag": "flags"}[action]
        self.reason.setPlaceholderText(f"reason — Enter {verb} {self.pair.item_ref}, Esc leaves the field")
        self.reason.setFocus()

    def _reason_entered(self) -> None:
        action = self.armed or "reject"
        self.flag() if action == "flag" else self.reject()
        self._home()

    def _disarm(self) -> None:
        self.armed = None
        self.reason.setPlaceholderText(REASON_HINT)

    @staticmethod
    def _approved_text(outcome: review_service.ReviewOutcome) -> str:
        if outcome.label_outcome == "conflict":
            return (f"{outcome.pair.item_ref}: the canonical label changed meanwhile; your answer is kept as a "
                    "conflict to resolve.")
        label = outcome.label
        version = f" v{label.version}" if label else ""
        return f"Approved {outcome.pair.item_ref} → canonical label {outcome.label_outcome or 'kept'}{version}."

"""LABEL stage, Mode A: review the Q&A pairs of a training sheet.

Left: training sheets with the seeds' progress block (pre-approved from canonical labels; needs
review: unlabeled / rejected / flagged) and bulk actions by confidence with a preview count.
Right: one pair at a time — the image (zoom and pan), the rendered prompt, the AI answer and its
confidence, the sensor context — with Approve (A), Edit (E), Reject (R), Flag (F). Approving
creates or versions the item's canonical label in the same transaction (the service does it).
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.services import generate as generate_service
from vital_desktop.services import review as review_service
from vital_desktop.services import sheets as sheet_service
from vital_desktop.services.generate import GenerationSummary, TrainingSheetInfo
from vital_desktop.services.review import PairInfo
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.generate_page import messages_text, monospace
from vital_desktop.ui.image_view import ImageView
from vital_desktop.ui.pages import Page
from vital_desktop.ui.widgets import Card, error_text, muted_label, page_layout, primary_button, show_error, title_label

PAIR_FILTERS = (("Needs review", "unlabeled"), ("Approved", "labeled"), ("Rejected", "rejected"),
                ("Flagged", "flagged"), ("All pairs", None))
TrainingSheetRole = Qt.ItemDataRole.UserRole + 20


def progress_html(summary: GenerationSummary) -> str:
    """The seeds' progress block, as a small tree."""
    muted = theme.MUTED

    def row(indent: int, name: str, value: int, color: str = theme.TEXT) -> str:
        pad = "&nbsp;" * (4 * indent)
        return (f"<tr><td style='color:{muted}'>{pad}{name}</td>"
                f"<td align='right' style='color:{color}; font-weight:600'>&nbsp;&nbsp;{value:,}</td></tr>")

    generated = "" if summary.generated == summary.total else \
        f"<br><span style='color:{theme.WARNING}'>{summary.generated:,} of {summary.total:,} generated ({summary.status})</span>"
    return (f"<b style='font-size:13pt'>{summary.labeled:,} / {summary.total:,}</b> labeled{generated}"
            "<table cellspacing='2'>"
            + row(0, "├─ Pre-approved (from canonical labels)", summary.pre_approved, theme.SUCCESS)
            + (row(0, "├─ Approved in review", summary.approved_in_review, theme.SUCCESS)
               if summary.approved_in_review else "")
            + row(0, "└─ Needs review", summary.needs_review, theme.WARNING)
            + row(1, "├─ Unlabeled", summary.unlabeled)
            + row(1, "├─ Rejected", summary.rejected, theme.DANGER)
            + row(1, "└─ Flagged", summary.flagged, theme.WARNING)
            + "</table>")


#: Pairs loaded at a time on the review page.
PAIR_PAGE = 200

class EditAnswerDialog(QDialog):
    """Correct the AI answer as JSON; it must fit the template's output schema and the label type."""

    def __init__(self, answer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit answer, then approve")
        self.edit = QPlainTextEdit(json.dumps(answer if answer is not None else {}, indent=2))
        self.edit.setFont(monospace())
        self.message = QLabel("")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Approve edited answer")
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.answer: dict | None = None
        self.resize(520, 420)

    def _check(self) -> None:
        try:
            value = json.loads(self.edit.toPlainText())
        except json.JSONDecodeError as exc:
            self.message.setText(f"Not valid JSON: {exc.msg} (line {exc.lineno})")
            return
        if not isinstance(value, dict):
            self.message.setText("The answer must be a JSON object.")
            return
        self.answer = value
        self.accept()


class LabelPage(Page):
    """Training sheets and the review of their pairs."""

    stage = "label"
    title = "LABEL"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.training_sheets: list[TrainingSheetInfo] = []
        self.current: TrainingSheetInfo | None = None
        self.pairs: list[PairInfo] = []  # the loaded page
        self.refs: list[str] = []  # every pair's item ref under the current filter, in order
        self.page_offset = 0
        self.index = -1
        self.busy = False
        self.bulk_preview: review_service.BulkPreview | None = None
        root, header = page_layout(self, "Review training sheets",
                                   "Mode A: approve AI answers to create canonical labels. Mode B: the Canonical "
                                   "Labels button.")

        splitter = QSplitter(Qt.Orientation.Horizontal)
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
        bulk_card = Card("Bulk action by confidence")
        grid = QGridLayout()
        self.bulk_action = QComboBox()
        self.bulk_action.addItem("Approve pairs with confidence ≥", "approve")
        self.bulk_action.addItem("Reject pairs with confidence <", "reject")
        self.bulk_threshold = QDoubleSpinBox()
        self.bulk_threshold.setRange(0.0, 1.0)
        self.bulk_threshold.setSingleStep(0.05)
        self.bulk_threshold.setValue(0.9)
        grid.addWidget(self.bulk_action, 0, 0)
        grid.addWidget(self.bulk_threshold, 0, 1)
        self.bulk_preview_label = muted_label("")
        self.bulk_preview_button = QPushButton("Preview count")
        self.bulk_preview_button.clicked.connect(self.preview_bulk)
        self.bulk_apply_button = QPushButton("Apply")
        self.bulk_apply_button.setEnabled(False)
        self.bulk_apply_button.clicked.connect(self.apply_bulk)
        grid.addWidget(self.bulk_preview_button, 1, 0)
        grid.addWidget(self.bulk_apply_button, 1, 1)
        bulk_card.body.addLayout(grid)
        bulk_card.body.addWidget(self.bulk_preview_label)
        self.bulk_action.currentIndexChanged.connect(self._bulk_changed)
        self.bulk_threshold.valueChanged.connect(self._bulk_changed)
        left_layout.addWidget(bulk_card)
        splitter.addWidget(left)

        review = Card()
        top = QHBoxLayout()
        self.pair_title = title_label("")
        self.pair_state = QLabel("")
        self.pair_state.setTextFormat(Qt.TextFormat.RichText)
        top.addWidget(self.pair_title)
        top.addWidget(self.pair_state)
        top.addStretch(1)
        self.filter = QComboBox()
        for text, value in PAIR_FILTERS:
            self.filter.addItem(text, value)
        self.filter.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.filter.activated.connect(lambda _i: self.load_pairs())
        top.addWidget(muted_label("Show", wrap=False))
        top.addWidget(self.filter)
        self.position_label = muted_label("", wrap=False)
        top.addWidget(self.position_label)
        review.body.addLayout(top)
        body = QSplitter(Qt.Orientation.Horizontal)
        self.image_view = ImageView()
        body.addWidget(self.image_view)
        texts = QWidget()
        texts_layout = QVBoxLayout(texts)
        texts_layout.setContentsMargins(0, 0, 0, 0)
        texts_layout.addWidget(title_label("AI answer"))
        self.answer = QLabel("")
        self.answer.setTextFormat(Qt.TextFormat.RichText)
        self.answer.setWordWrap(True)
        texts_layout.addWidget(self.answer)
        texts_layout.addWidget(title_label("Sensor context"))
        self.sensor = muted_label("")
        texts_layout.addWidget(self.sensor)
        texts_layout.addWidget(title_label("Rendered prompt"))
        self.prompt = QPlainTextEdit()
        self.prompt.setReadOnly(True)
        self.prompt.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        texts_layout.addWidget(self.prompt, 1)
        body.addWidget(texts)
        body.setSizes([480, 420])
        review.body.addWidget(body, 1)
        actions = QHBoxLayout()
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("reason for reject / flag")
        self.buttons: dict[str, QPushButton] = {}
        for name, text, handler in (("approve", "Approve  (A)", self.approve), ("edit", "Edit…  (E)", self.edit),
                                    ("reject", "Reject  (R)", self.reject), ("flag", "Flag  (F)", self.flag)):
            button = primary_button(text) if name == "approve" else QPushButton(text)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(handler)
            self.buttons[name] = button
            actions.addWidget(button)
        actions.addWidget(self.reason, 1)
        previous_button = QPushButton("←")
        previous_button.clicked.connect(self.previous_pair)
        next_button = QPushButton("→")
        next_button.clicked.connect(self.next_pair)
        for button in (previous_button, next_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            actions.addWidget(button)
        review.body.addLayout(actions)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        review.body.addWidget(self.message)
        splitter.addWidget(review)
        splitter.setSizes([360, 940])
        splitter.setStretchFactor(1, 1)
        root.addWidget(splitter, 1)
        self.reload()

    # --- training sheets ------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        select = select or (self.current.name if self.current else None)
        self.training_sheets = generate_service.list_training_sheets(self.context.store)
        self.sheet_list.blockSignals(True)
        self.sheet_list.clear()
        for info in self.training_sheets:
            entry = QListWidgetItem(f"{info.name}\n{info.sheet_name} · {info.template_name} v{info.template_version}"
                                    f" · {info.total_items:,} items · {info.status}")
            entry.setData(TrainingSheetRole, info)
            self.sheet_list.addItem(entry)
        self.sheet_list.blockSignals(False)
        names = [t.name for t in self.training_sheets]
        if select in names:
            self.sheet_list.setCurrentRow(names.index(select))
        elif names:
            self.sheet_list.setCurrentRow(0)
        else:
            self.show_training_sheet(None)

    def _sheet_selected(self, entry: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        self.show_training_sheet(entry.data(TrainingSheetRole) if entry is not None else None)

    def show_training_sheet(self, info: TrainingSheetInfo | None) -> None:
        self.current = info
        self.bulk_apply_button.setEnabled(False)
        self.bulk_preview_label.setText("")
        if info is None:
            self.progress.setText("No training sheets yet: generate one on the GENERATE page.")
            self.pairs, self.refs, self.page_offset = [], [], 0
            self.show_pair(-1)
            return
        self.update_progress()
        self.load_pairs()

    def update_progress(self) -> None:
        if self.current is not None:
            self.summary = generate_service.summary(self.context.store, self.current.name)
            self.progress.setText(progress_html(self.summary))

    def load_pairs(self, keep: str | None = None) -> None:
        """Load the page of pairs that holds `keep` (or the first page); pairs come a page at a
        time, so a 100,000-pair training sheet opens as fast as a small one."""
        if self.current is None:
            return
        self.refs = review_service.pair_refs(self.context.store, training_sheet=self.current.name,
                                             status=self.filter.currentData())
        position = self.refs.index(keep) if keep in self.refs else 0
        self._load_page(position - position % PAIR_PAGE)
        self.show_pair(position - self.page_offset if self.pairs else -1)

    def _load_page(self, offset: int) -> None:
        # By item ref, not by a filtered offset: pairs reviewed meanwhile leave the filter, and
        # an offset would then skip the ones after them.
        assert self.current is not None
        self.page_offset = offset
        refs = self.refs[offset:offset + PAIR_PAGE]
        self.pairs = review_service.list_pairs(self.context.store, training_sheet=self.current.name,
                                               item_refs=refs, limit=None) if refs else []

    def on_changes(self, changes: Changes) -> None:
        if changes.training_sheets:
            self.reload()
        elif (changes.pairs or changes.labels) and self.current is not None and not self.busy:
            self.update_progress()

    def activate(self, **arguments: Any) -> None:
        wanted = arguments.get("training_sheet")
        if wanted or (self.current is None):
            self.reload(select=wanted)
        else:
            self.update_progress()
        if arguments.get("item") and self.current is not None:
            self.filter.setCurrentIndex(self.filter.findData(None))
            self.load_pairs(keep=arguments["item"])

    def pair_for(self, item_ref: str) -> PairInfo | None:
        """The loaded pair of an item (for tests and deep links)."""
        return next((p for p in self.pairs if p.item_ref == item_ref), None)

    # --- one pair ---------------------------------------------------------------------------------
    @property
    def pair(self) -> PairInfo | None:
        return self.pairs[self.index] if 0 <= self.index < len(self.pairs) else None

    def show_pair(self, index: int) -> None:
        self.index = index
        pair = self.pair
        for button in self.buttons.values():
            button.setEnabled(pair is not None)
        if pair is None or self.current is None:
            self.pair_title.setText("Nothing to review with this filter" if self.current else "")
            self.pair_state.setText("")
            self.position_label.setText("")
            self.answer.setText("")
            self.prompt.setPlainText("")
            self.sensor.setText("")
            self.image_view.show_pixmap(None, "")
            return
        self.pair_title.setText(pair.item_ref)
        color = theme.STATUS_COLORS.get(pair.status, theme.MUTED)
        source = {"canonical": "pre-approved from its canonical label"}.get(pair.source, f"source: {pair.source}")
        label = f" · canonical label v{pair.current_label_version}" if pair.current_label_version else ""
        conflict = f" · <span style='color:{theme.DANGER}'>label conflict</span>" if pair.label_conflict else ""
        self.pair_state.setText(f"<span style='color:{color}; font-weight:600'>● {pair.status}</span>"
                                f"<span style='color:{theme.MUTED}'> · {source}{label}</span>{conflict}")
        self.position_label.setText(f"{self.page_offset + index + 1:,} / {len(self.refs):,}")
        confidence = f"{pair.confidence:.2f}" if pair.confidence is not None else "—"
        answer = json.dumps(pair.answer) if pair.answer is not None else "(no answer)"
        error = f"<br><span style='color:{theme.DANGER}'>AI error: {pair.ai_error}</span>" if pair.ai_error else ""
        reason = f"<br><span style='color:{theme.MUTED}'>review note: {pair.review_reason}</span>" \
            if pair.review_reason else ""
        self.answer.setText(f"<span style='font-family:monospace'>{answer}</span><br>"
                            f"<span style='color:{theme.MUTED}'>confidence</span> <b>{confidence}</b>{error}{reason}")
        self.prompt.setPlainText(messages_text(pair.messages))
        try:
            item = sheet_service.get_item(self.context.store, self.current.sheet_name, pair.item_ref)
        except Exception:  # noqa: BLE001 - the sheet may have changed; the pair still shows
            item = None
        if item is not None:
            self.sensor.setText("  ·  ".join(f"{k}: {v}" for k, v in item.metadata.items()))
            path = item.absolute_image_path
            pixmap = self.context.images.image(path) or (self.context.images.image_now(path) if path else None)
            self.image_view.show_pixmap(pixmap, "no image")
            for ahead in self.pairs[index + 1:index + 3]:
                self._prefetch(ahead)
        self.message.setText("")

    def _prefetch(self, pair: PairInfo) -> None:
        if self.current is None:
            return
        try:
            item = sheet_service.get_item(self.context.store, self.current.sheet_name, pair.item_ref)
        except Exception:  # noqa: BLE001
            return
        self.context.images.prefetch(item.absolute_image_path)

    def next_pair(self) -> None:
        if self.index + 1 < len(self.pairs):
            self.show_pair(self.index + 1)
        elif self.current is not None and self.page_offset + len(self.pairs) < len(self.refs):
            self._load_page(self.page_offset + PAIR_PAGE)
            self.show_pair(0)

    def previous_pair(self) -> None:
        if self.index > 0:
            self.show_pair(self.index - 1)
        elif self.current is not None and self.page_offset > 0:
            self._load_page(self.page_offset - PAIR_PAGE)
            self.show_pair(len(self.pairs) - 1)

    def back(self) -> None:
        self.sheet_list.setFocus()

    # --- review actions ----------------------------------------------------------------------------
    def _review(self, title: str, call, *, describe) -> None:
        pair = self.pair
        if pair is None or self.busy:
            return
        self.busy = True
        store, actor = self.context.store, self.context.user

        def done(outcome: review_service.ReviewOutcome) -> None:
            self.busy = False
            self.pairs[self.index] = outcome.pair
            self.context.say(describe(outcome))
            self.update_progress()
            before = (self.page_offset, self.index)
            self.next_pair()
            if (self.page_offset, self.index) == before:  # the last pair: stay on it
                self.show_pair(self.index)
            self.message.setText(describe(outcome))

        def failed(exc: BaseException) -> None:
            self.busy = False
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")

        self.context.run_change(title, lambda _p: call(store, actor, pair.id), on_result=done, on_error=failed)

    def approve(self) -> None:
        self._review("Approving", lambda store, actor, pid: review_service.approve(store, actor=actor, pair_id=pid),
                     describe=self._approved_text)

    def edit(self) -> None:
        pair = self.pair
        if pair is None:
            return
        dialog = EditAnswerDialog(pair.answer, self)
        self.edit_dialog = dialog

        def accepted() -> None:
            answer = dialog.answer
            self._review("Approving edited answer",
                         lambda store, actor, pid: review_service.edit_and_approve(store, actor=actor, pair_id=pid,
                                                                                    answer=answer),
                         describe=self._approved_text)

        dialog.accepted.connect(accepted)
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

    @staticmethod
    def _approved_text(outcome: review_service.ReviewOutcome) -> str:
        if outcome.label_outcome == "conflict":
            return (f"{outcome.pair.item_ref}: the canonical label changed meanwhile; your answer is kept as a "
                    "conflict to resolve.")
        label = outcome.label
        version = f" v{label.version}" if label else ""
        return f"Approved {outcome.pair.item_ref} → canonical label {outcome.label_outcome or 'kept'}{version}."

    # --- bulk ---------------------------------------------------------------------------------------
    def _bulk_changed(self) -> None:
        self.bulk_preview = None
        self.bulk_apply_button.setEnabled(False)
        self.bulk_apply_button.setText("Apply")
        self.bulk_preview_label.setText("")

    def preview_bulk(self) -> None:
        if self.current is None:
            return
        try:
            preview = review_service.preview_bulk(self.context.store, actor=self.context.user,
                                                  training_sheet=self.current.name,
                                                  action=self.bulk_action.currentData(),
                                                  threshold=self.bulk_threshold.value())
        except Exception as exc:  # noqa: BLE001
            show_error(self, "Bulk preview", exc)
            return
        self.bulk_preview = preview
        skipped = []
        if preview.skipped_claimed:
            skipped.append(f"{preview.skipped_claimed} claimed by others")
        if preview.skipped_invalid:
            skipped.append(f"{preview.skipped_invalid} invalid answers")
        self.bulk_preview_label.setText(f"{preview.count:,} pairs would be {preview.action}d"
                                        + (f" (skipping {', '.join(skipped)})" if skipped else "")
                                        + (f": {', '.join(preview.sample[:5])}…" if preview.sample else ""))
        self.bulk_apply_button.setEnabled(preview.count > 0)
        self.bulk_apply_button.setText(f"{preview.action.capitalize()} {preview.count:,} pairs")

    def apply_bulk(self) -> None:
        preview = self.bulk_preview
        if preview is None or self.current is None:
            return
        store, actor, name = self.context.store, self.context.user, self.current.name

        def done(result: review_service.BulkResult) -> None:
            self.busy = False
            self.bulk_preview_label.setText(f"{result.done:,} pairs {result.action}d; {result.labels_created} "
                                            f"canonical labels created, {result.labels_updated} updated"
                                            + (f", {result.conflicts} conflicts" if result.conflicts else ""))
            self.bulk_apply_button.setEnabled(False)
            self.update_progress()
            self.load_pairs()

        def failed(exc: BaseException) -> None:
            self.busy = False
            self.bulk_preview_label.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")

        self.busy = True
        self.context.run_change(
            f"Bulk {preview.action}",
            lambda _p: review_service.bulk_action(store, actor=actor, training_sheet=name, action=preview.action,
                                                  threshold=preview.threshold, expected_count=preview.count),
            on_result=done, on_error=failed)

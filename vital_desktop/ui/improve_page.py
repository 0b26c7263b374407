"""IMPROVE stage: the feedback queue (inspectors flag wrong predictions; engineers accept the
correction into the canonical labels or reject it) and the gap analysis, ranked by impact.

Accepting feedback writes the corrected canonical label (a new version); the next TRAIN run
learns from it and marks the feedback "added to training" — the seeds' loop from production
back to labeling and training.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.services import feedback as feedback_service
from vital_desktop.services import predict as predict_service
from vital_desktop.services import registry
from vital_desktop.services import sheets as sheet_service
from vital_desktop.ui import theme
from vital_desktop.ui.attribute_rows import AttributeRows
from vital_desktop.ui.charts import fill_table, read_only_table, selected_data
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.permissions import gate, permitted, reason_label
from vital_desktop.ui.widgets import (
    Card,
    compact_combo,
    error_text,
    muted_label,
    page_layout,
    primary_button,
    show_error,
    title_label,
)

STATUS_COLORS = {"new": theme.ACCENT, "accepted": theme.SUCCESS, "rejected": theme.DANGER,
                 "added_to_training": theme.ACCENT_DARK}
THUMBNAIL = QSize(40, 40)
log = logging.getLogger(__name__)


class ImprovePage(Page):
    """Feedback from inspectors, expert review, and where the model is weak."""

    stage = "improve"
    title = "IMPROVE"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.items: list[feedback_service.FeedbackInfo] = []
        self.thumb_rows: dict[str, list[int]] = defaultdict(list)
        self.gaps: feedback_service.GapReport | None = None
        self.can_review = permitted(context.user, "review_feedback")

        root, _header = page_layout(self, "Improve",
                                   "Production → feedback → canonical labels → training → redeployment.")

        splitter = QSplitter(Qt.Orientation.Vertical)
        root.addWidget(splitter, 1)
        top = QSplitter(Qt.Orientation.Horizontal)
        queue_card = Card()
        row = QHBoxLayout()
        row.addWidget(title_label("Feedback queue"))
        row.addStretch(1)
        row.addWidget(QLabel("Status"))
        self.status_filter = QComboBox()
        self.status_filter.addItem("all", None)
        for status in feedback_service.STATUSES:
            self.status_filter.addItem(status.replace("_", " "), status)
        self.status_filter.setCurrentIndex(1)  # new: what waits for review
        self.status_filter.currentIndexChanged.connect(lambda _i: self.reload_queue())
        row.addWidget(self.status_filter)
        queue_card.body.addLayout(row)
        self.queue = read_only_table(["created", "item", "model", "prediction", "correction", "by", "status", "comment"])
        self.queue.setIconSize(THUMBNAIL)
        self.queue.verticalHeader().setDefaultSectionSize(THUMBNAIL.height() + 6)
        self.queue.itemSelectionChanged.connect(self._selected)
        queue_card.body.addWidget(self.queue, 1)
        review = QHBoxLayout()
        self.note = QLineEdit()
        self.note.setPlaceholderText("review note (kept with the decision) — Enter accepts")
        self.note.returnPressed.connect(lambda: self.accept_selected())
        review.addWidget(self.note, 1)
        self.accept_button = primary_button("Accept correction")
        self.accept_button.setToolTip("Write the correction as the item's canonical label (Ctrl+Shift+A)")
        self.accept_button.clicked.connect(lambda: self.accept_selected())
        self.reject_button = QPushButton("Reject")
        self.reject_button.setToolTip("Decline the correction; the note says why (Ctrl+Shift+R)")
        self.reject_button.clicked.connect(lambda: self.reject_selected())
        self.label_button = QPushButton("Open in labeling tool")
        self.label_button.setToolTip("Look at the item in the Canonical Labeling Tool")
        self.label_button.clicked.connect(self._open_item)
        for button in (self.accept_button, self.reject_button, self.label_button):
            review.addWidget(button)
        queue_card.body.addLayout(review)
        self.review_message = muted_label()
        queue_card.body.addWidget(self.review_message)
        self.review_reason = reason_label()
        queue_card.body.addWidget(self.review_reason)
        if not gate(context.user, "review_feedback", (self.accept_button, self.reject_button, self.note),
                    self.review_reason, "Accepting or rejecting feedback"):
            self.review_reason.setText(self.review_reason.text() + " You can flag wrong predictions on the right.")
        top.addWidget(queue_card)

        flag_card = Card("Flag a wrong prediction")
        form = QFormLayout()
        self.prediction_pick = compact_combo()
        self.prediction_pick.setMinimumWidth(280)
        form.addRow("Prediction", self.prediction_pick)
        self.corrected = QComboBox()
        self.corrected.setEditable(True)
        self.corrected.setToolTip("A class from the taxonomy, or a new defect type (gap analysis reports it)")
        form.addRow("It really shows", self.corrected)
        # one row per attribute field of the selected prediction's label type (rebuilt when it changes)
        self.attribute_rows = AttributeRows(form, form.rowCount())
        self.prediction_fields: dict[str, tuple[str | None, list]] = {}
        self.prediction_pick.currentIndexChanged.connect(lambda _i: self._show_attribute_rows())
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("what you saw (optional) — Enter adds the feedback")
        self.comment.returnPressed.connect(lambda: self.add_feedback())
        form.addRow("Comment", self.comment)
        flag_card.body.addLayout(form)
        self.flag_button = primary_button("Add feedback")
        self.flag_button.clicked.connect(lambda: self.add_feedback())
        flag_card.body.addWidget(self.flag_button, 0, Qt.AlignmentFlag.AlignRight)
        self.flag_reason = reason_label()
        flag_card.body.addWidget(self.flag_reason)
        gate(context.user, "feedback", [self.flag_button], self.flag_reason, "Flagging predictions")
        self.flag_message = muted_label()
        flag_card.body.addWidget(self.flag_message)
        flag_card.body.addStretch(1)
        top.addWidget(flag_card)
        top.setSizes([900, 420])
        splitter.addWidget(top)

        from vital_desktop.ui.suspects_panel import SuspectsPanel

        self.suspects = SuspectsPanel(context)  # "Possibly mislabelled" queue
        splitter.addWidget(self.suspects)

        gaps_card = Card()
        row = QHBoxLayout()
        row.addWidget(title_label("Gap analysis"))
        self.gap_model = muted_label(wrap=False)
        row.addWidget(self.gap_model)
        row.addStretch(1)
        gaps_card.body.addLayout(row)
        gap_split = QSplitter(Qt.Orientation.Horizontal)
        self.findings = read_only_table(["impact", "finding", "class", "what it means", "suggestion"])
        self.findings.setWordWrap(True)
        for column in (3, 4):
            self.findings.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        gap_split.addWidget(self.findings)
        self.class_table = read_only_table(["class", "in model", "training", "predictions", "flagged wrong",
                                            "error rate", "missed", "low conf."])
        gap_split.addWidget(self.class_table)
        gap_split.setSizes([760, 560])
        gaps_card.body.addWidget(gap_split, 1)
        self.impact_rule = muted_label()
        gaps_card.body.addWidget(self.impact_rule)
        splitter.addWidget(gaps_card)
        splitter.setSizes([420, 260, 330])

        context.images.thumbnail_ready.connect(self._thumbnail_ready)
        self.reload()

    # --- loading --------------------------------------------------------------------------------
    def reload(self) -> None:
        self.reload_queue()
        self.reload_predictions()
        self.reload_gaps()

    def reload_queue(self) -> None:
        current = selected_data(self.queue)
        status = self.status_filter.currentData()

        def load(op):
            items = feedback_service.list_feedback(op.store, status=status)
            return items, _image_paths(op.store, items)

        self.context.query("feedback queue", load, key="improve.queue",
                           on_result=lambda value: self._show_queue(value, current))

    def _show_queue(self, value: tuple[list, dict], current: Any) -> None:
        self.items, paths = value
        rows, colors = [], {}
        for r, info in enumerate(self.items):
            rows.append(((info.created_at or "")[:16], info.item_ref or "—", info.model or "—",
                         info.predicted_class or "—",
                         (info.corrected_class or "—") + ("" if info.in_taxonomy else "  (new class)"),
                         info.created_by, info.status.replace("_", " "), info.comment))
            colors[(r, 6)] = STATUS_COLORS.get(info.status, theme.TEXT)
            if not info.in_taxonomy:
                colors[(r, 4)] = theme.WARNING
        fill_table(self.queue, rows, data=[i.id for i in self.items], colors=colors)
        self.thumb_rows.clear()
        for r, info in enumerate(self.items):
            path = paths.get((info.sheet, info.item_ref))
            if not path:
                continue
            self.thumb_rows[path].append(r)
            pixmap = self.context.images.thumbnail(path)
            cell = self.queue.item(r, 1)
            if pixmap is not None and cell is not None:
                cell.setIcon(QIcon(pixmap))
        ids = [i.id for i in self.items]
        if current in ids:
            self.queue.selectRow(ids.index(current))
        self._selected()

    def _thumbnail_ready(self, path: str) -> None:
        pixmap = self.context.images.thumbnail(path)
        if pixmap is None:
            return
        for r in self.thumb_rows.get(path, []):
            cell = self.queue.item(r, 1)
            if cell is not None:
                cell.setIcon(QIcon(pixmap))

    def reload_predictions(self) -> None:
        """Recent classifier predictions an inspector can flag, and the taxonomy's classes."""

        def load(op):
            recent = predict_service.recent_predictions(op.store, limit=200)
            try:
                classes = feedback_service.correction_classes(op.store)
            except Exception:
                log.debug("no classes to correct to", exc_info=True)
                classes = []
            fields = feedback_service.prediction_fields(op.store, [p["id"] for p in recent])
            return recent, classes, fields

        self.context.query("recent predictions", load, key="improve.predictions", on_result=self._show_predictions,
                           on_error=lambda exc: self.flag_message.setText(error_text(exc)))

    def _show_predictions(self, value: tuple[list[dict], list[str], dict]) -> None:
        recent, classes, self.prediction_fields = value
        self.prediction_pick.blockSignals(True)
        self.prediction_pick.clear()
        for p in recent:
            if p["kind"] != registry.KIND_ONNX or not p["predicted_class"]:
                continue
            confidence = f" ({p['confidence']:.0%})" if p["confidence"] is not None else ""
            self.prediction_pick.addItem(f"{p['item_ref'] or p['image_path']} → {p['predicted_class']}{confidence}  "
                                         f"[{p['model']}]", p["id"])
        if self.prediction_pick.count() == 0:
            self.prediction_pick.addItem("no predictions yet (classify a sheet on MONITOR)", None)
        self.prediction_pick.blockSignals(False)
        self._show_attribute_rows()
        current = self.corrected.currentText()
        self.corrected.clear()
        self.corrected.addItems(classes)
        if current:
            self.corrected.setCurrentText(current)

    def _show_attribute_rows(self) -> None:
        """The feedback form's attribute rows: those of the selected prediction's label type."""
        label_type, fields = self.prediction_fields.get(self.prediction_pick.currentData(), (None, []))
        self.attribute_rows.show(label_type, fields)

    def reload_gaps(self) -> None:
        self.context.query("Gap analysis", lambda op: feedback_service.gap_analysis(op.store), key="improve.gaps",
                           on_result=self._show_gaps, on_error=self._gaps_failed)

    def _gaps_failed(self, exc: BaseException) -> None:
        self.gaps = None
        self.gap_model.setText(error_text(exc))
        fill_table(self.findings, [])
        fill_table(self.class_table, [])

    def _show_gaps(self, report: feedback_service.GapReport) -> None:
        self.gaps = report
        self.gap_model.setText(f"of {report.model} — ranked by impact")
        fill_table(self.findings, [(f"{f.impact:.0f}", f.kind.replace("_", " "), f.cls, f.message, f.suggestion)
                                   for f in report.findings] or [("", "none found", "", "no weakness found yet", "")],
                   colors={(r, 1): theme.DANGER if f.kind == "new_class" else theme.WARNING
                           for r, f in enumerate(report.findings)})
        self.findings.resizeRowsToContents()
        rows = []
        for c in report.classes:
            rows.append((c["class"], "yes" if c["in_model"] else "NO", c["training_count"], c["predictions"],
                         c["flagged_wrong"], f"{c['error_rate']:.0%}" if c["error_rate"] is not None else "—",
                         c["missed"], c["low_confidence"]))
        fill_table(self.class_table, rows,
                   colors={(r, 1): theme.DANGER for r, c in enumerate(report.classes) if not c["in_model"]})
        self.impact_rule.setText("Impact: " + report.impact_rule)

    # --- selection and review ---------------------------------------------------------------------
    def selected_item(self) -> feedback_service.FeedbackInfo | None:
        feedback_id = selected_data(self.queue)
        return next((i for i in self.items if i.id == feedback_id), None)

    def _selected(self) -> None:
        info = self.selected_item()
        open_item = info is not None and info.status == "new"
        self.accept_button.setEnabled(self.can_review and open_item and bool(info and info.in_taxonomy))
        self.reject_button.setEnabled(self.can_review and open_item)
        self.label_button.setEnabled(info is not None and bool(info.sheet and info.item_ref))
        if info is not None and open_item and not info.in_taxonomy and self.can_review:
            self.review_message.setText(f"{info.corrected_class!r} is not a class of the taxonomy yet: it cannot "
                                        "become a canonical label until the label type knows it (gap analysis lists it).")

    def accept_selected(self) -> None:
        """Expert: the correction becomes the item's canonical label (or a conflict, if someone else labelled it)."""
        info = self.selected_item()
        if info is None or not self.can_review:
            return
        note, feedback_id = self.note.text(), info.id

        def done(result: feedback_service.AcceptResult) -> None:
            self.note.clear()
            self.queue.setFocus()  # the next key (arrows, Ctrl+Shift+A) belongs to the queue
            if result.label_outcome == "conflict":
                self.review_message.setText(f"Accepted, but the item's label was written by someone else: recorded as a "
                                            f"conflict for LABEL to resolve ({result.conflict_id}).")
            else:
                self.review_message.setText(f"Accepted: canonical label {result.label_outcome} "
                                            f"(version {result.label_version}); the next training run learns it.")

        self.context.change(
            "Accepting feedback",
            lambda op: feedback_service.accept_feedback(op.store, actor=op.actor, feedback_id=feedback_id, note=note),
            on_result=done, on_error=lambda exc: show_error(self, "Accept feedback", exc))

    def reject_selected(self) -> None:
        info = self.selected_item()
        if info is None or not self.can_review:
            return
        note, feedback_id = self.note.text(), info.id

        def done(_info: Any) -> None:
            self.note.clear()
            self.queue.setFocus()
            self.review_message.setText("Rejected; the note is kept with the decision.")

        self.context.change(
            "Rejecting feedback",
            lambda op: feedback_service.reject_feedback(op.store, actor=op.actor, feedback_id=feedback_id, note=note),
            on_result=done, on_error=lambda exc: show_error(self, "Reject feedback", exc))

    def _open_item(self) -> None:
        info = self.selected_item()
        if info is not None and info.sheet and info.item_ref:
            self.context.navigate("canonical", sheet=info.sheet, item=info.item_ref)

    def add_feedback(self) -> None:
        """Flag the chosen prediction as wrong with the class it really shows."""
        prediction_id = self.prediction_pick.currentData()
        corrected = self.corrected.currentText().strip()
        if prediction_id is None:
            self.flag_message.setText("Pick a prediction first.")
            return
        attributes, comment = self.attribute_rows.values(), self.comment.text()

        def done(info: feedback_service.FeedbackInfo) -> None:
            self.comment.clear()
            self.attribute_rows.reset()
            self.prediction_pick.setFocus()
            self.flag_message.setText(f"Thanks: {info.predicted_class} → {info.corrected_class} waits for expert review.")

        def failed(exc: BaseException) -> None:
            self.flag_message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")

        self.context.change(
            "Adding feedback",
            lambda op: feedback_service.add_feedback(op.store, actor=op.actor, corrected_class=corrected,
                                                     prediction_id=prediction_id, attributes=attributes, comment=comment),
            on_result=done, on_error=failed)

    # --- page protocol --------------------------------------------------------------------------
    def on_changes(self, changes: Changes) -> None:
        if changes.feedback:
            self.reload_queue()
        if changes.predictions or changes.models:
            self.reload_predictions()
        if changes.feedback or changes.models or changes.predictions or changes.labels:
            self.reload_gaps()

    def activate(self, **arguments: Any) -> None:
        self.reload_queue()


def _image_paths(store: Any, items: list[feedback_service.FeedbackInfo]) -> dict[tuple[str | None, str | None], str]:
    """Image file of each feedback item: one query per sheet (runs in a worker; thumbnails decode in the pool)."""
    by_sheet: dict[str, set[str]] = defaultdict(set)
    for info in items:
        if info.sheet and info.item_ref:
            by_sheet[info.sheet].add(info.item_ref)
    out: dict[tuple[str | None, str | None], str] = {}
    for sheet, refs in by_sheet.items():
        try:
            for item in sheet_service.list_items(store, sheet, item_refs=sorted(refs), limit=None):
                if item.absolute_image_path and not item.missing:
                    out[(sheet, item.item_ref)] = item.absolute_image_path
        except Exception:
            log.debug("no thumbnails for sheet %r", sheet, exc_info=True)
            continue
    return out

"""Parts of the Mode A review page: the progress block, the edit dialog, the bulk-action card.

The edit dialog never loses the expert's text: it stays open while the edited answer is being
approved and shows a refusal (a schema error, a conflict) in place, so the expert fixes the JSON
instead of typing it again.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.services import review as review_service
from vital_desktop.services.generate import GenerationSummary
from vital_desktop.ui import label_ops, theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.generate_page import monospace
from vital_desktop.ui.widgets import Card, error_text, muted_label


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


class EditAnswerDialog(QDialog):
    """Correct the AI answer as JSON; it must fit the template's output schema and the label type.

    `submitted(answer)` asks the page to approve it; the page calls `done()` when it was
    approved, or `refused(message)` and the dialog stays open with the text as typed.
    """

    submitted = Signal(object)

    def __init__(self, answer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit answer, then approve")
        self.edit = QPlainTextEdit(json.dumps(answer if answer is not None else {}, indent=2))
        self.edit.setFont(monospace())
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Approve edited answer  (Ctrl+Enter)")
        self.edit.installEventFilter(self)  # Ctrl+Enter in the text approves (Enter alone is a new line)
        self.buttons.accepted.connect(self._check)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.answer: dict | None = None
        self.resize(520, 420)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) \
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            if self.ok.isEnabled():
                self._check()
            return True
        return super().eventFilter(watched, event)

    def _check(self) -> None:
        try:
            value = json.loads(self.edit.toPlainText())
        except json.JSONDecodeError as exc:
            self.refused(f"Not valid JSON: {exc.msg} (line {exc.lineno})")
            return
        if not isinstance(value, dict):
            self.refused("The answer must be a JSON object.")
            return
        self.answer = value
        self.message.setText("Approving…")
        self.ok.setEnabled(False)
        self.submitted.emit(value)

    def refused(self, message: str) -> None:
        """Show why the answer was not approved; the text stays as the expert typed it."""
        self.ok.setEnabled(True)
        self.message.setText(f"<span style='color:{theme.DANGER}'>{message}</span>")
        self.edit.setFocus()

    def done_ok(self) -> None:
        self.accept()


class BulkPanel(Card):
    """Approve or reject every unreviewed pair above / below a confidence, after a preview count."""

    #: a bulk action finished (the page reloads its pairs)
    applied = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__("Bulk action by confidence", parent)
        self.context = context
        self.training_sheet: str | None = None
        self.preview: review_service.BulkPreview | None = None
        grid = QGridLayout()
        self.action = QComboBox()
        self.action.addItem("Approve pairs with confidence ≥", "approve")
        self.action.addItem("Reject pairs with confidence <", "reject")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.9)
        grid.addWidget(self.action, 0, 0)
        grid.addWidget(self.threshold, 0, 1)
        self.label = muted_label("")
        self.preview_button = QPushButton("Preview count")
        self.preview_button.clicked.connect(self.preview_count)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self.apply)
        grid.addWidget(self.preview_button, 1, 0)
        grid.addWidget(self.apply_button, 1, 1)
        self.body.addLayout(grid)
        self.body.addWidget(self.label)
        self.action.currentIndexChanged.connect(self.reset)
        self.threshold.valueChanged.connect(self.reset)
        for widget in (self.action, self.threshold):
            widget.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    def set_training_sheet(self, name: str | None) -> None:
        self.training_sheet = name
        self.reset()

    def reset(self) -> None:
        self.preview = None
        self.apply_button.setEnabled(False)
        self.apply_button.setText("Apply")
        self.label.setText("")

    def preview_count(self) -> None:
        name = self.training_sheet
        if name is None:
            return
        action, threshold = self.action.currentData(), self.threshold.value()
        label_ops.query(self.context, "Bulk preview", lambda op: review_service.preview_bulk(
            op.store, actor=op.actor, training_sheet=name, action=action, threshold=threshold),
            on_result=self._previewed, on_error=self._failed, key="review-bulk-preview", owner=self)

    def _previewed(self, preview: review_service.BulkPreview) -> None:
        self.preview = preview
        skipped = []
        if preview.skipped_claimed:
            skipped.append(f"{preview.skipped_claimed} claimed by others")
        if preview.skipped_invalid:
            skipped.append(f"{preview.skipped_invalid} invalid answers")
        self.label.setText(f"{preview.count:,} pairs would be {preview.action}d"
                           + (f" (skipping {', '.join(skipped)})" if skipped else "")
                           + (f": {', '.join(preview.sample[:5])}…" if preview.sample else ""))
        self.apply_button.setEnabled(preview.count > 0)
        self.apply_button.setText(f"{preview.action.capitalize()} {preview.count:,} pairs")

    def apply(self) -> None:
        preview, name = self.preview, self.training_sheet
        if preview is None or name is None:
            return
        self.apply_button.setEnabled(False)
        label_ops.change(self.context, f"Bulk {preview.action}", lambda op: review_service.bulk_action(
            op.store, actor=op.actor, training_sheet=name, action=preview.action, threshold=preview.threshold,
            expected_count=preview.count), on_result=self._applied, on_error=self._failed, owner=self)

    def _applied(self, result: review_service.BulkResult) -> None:
        self.label.setText(f"{result.done:,} pairs {result.action}d; {result.labels_created} canonical labels "
                           f"created, {result.labels_updated} updated"
                           + (f", {result.conflicts} conflicts" if result.conflicts else ""))
        self.apply_button.setEnabled(False)
        self.applied.emit()

    def _failed(self, exc: BaseException) -> None:
        self.label.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")

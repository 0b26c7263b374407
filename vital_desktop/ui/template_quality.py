"""GENERATE, measured: a template's Quality tab, and the Evaluate and Optimise dialogs.

The tab lists every stored evaluation of the template's versions (accuracy, schema-valid rate,
calibration error). Evaluate scores a version on a sheet's evaluation-allowed canonical labels;
Optimise searches few-shot examples and instruction variants within a time budget and proposes
a new draft, shown beside the baseline (selection and held-out splits) with its diff. Both run
off the GUI thread (compute pool; they write once, at the end) with progress, time left and
Cancel. Publishing the proposal stays the engineer's decision (Versions tab, Publish).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import Cancelled
from vital_desktop.core.progress import format_eta
from vital_desktop.services import sheets as sheet_service
from vital_desktop.services import template_eval, template_optimise
from vital_desktop.services.templates import TemplateInfo
from vital_desktop.ui import theme
from vital_desktop.ui.charts import fill_table
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.operations import OpEnv
from vital_desktop.ui.permissions import permitted
from vital_desktop.ui.widgets import error_text, muted_label, primary_button

PURPOSE_TEXT = {"evaluate": "evaluation", "optimise-selection": "optimisation: selection split",
                "optimise-heldout": "optimisation: held-out split"}


def pct(value: Any) -> str:
    return "–" if value is None else f"{100.0 * float(value):.1f} %"


def ece_text(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def _table(columns: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setWordWrap(False)
    return table


class QualityTab(QWidget):
    """Stored evaluations of the shown template's versions, with Evaluate… and Optimise…."""

    def __init__(self, context: AppContext, on_proposed: Callable[[str], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.on_proposed = on_proposed
        self.template: TemplateInfo | None = None
        self.evaluations: list[template_eval.EvaluationInfo] = []
        self.dialog: RunDialog | None = None
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(muted_label("Scored against canonical labels that allow evaluation; the model cannot see "
                                  "images, so image templates are scored with the classifier's evidence."), 1)
        self.evaluate_button = QPushButton("Evaluate…")
        self.evaluate_button.clicked.connect(self.open_evaluate)
        self.optimise_button = QPushButton("Optimise…")
        self.optimise_button.clicked.connect(self.open_optimise)
        row.addWidget(self.evaluate_button)
        row.addWidget(self.optimise_button)
        layout.addLayout(row)
        self.table = _table(["Version", "Accuracy", "Schema-valid", "ECE", "Items", "Measured", "Sheet", "Model",
                             "When"])
        layout.addWidget(self.table, 1)
        self.fields = muted_label("")
        layout.addWidget(self.fields)
        self.table.itemSelectionChanged.connect(self._selected)
        self.can_generate = permitted(context.user, "generate")
        self.can_edit = permitted(context.user, "edit_template")
        if not self.can_generate:
            self.evaluate_button.setToolTip("Evaluating templates needs the generate permission")
        if not self.can_edit:
            self.optimise_button.setToolTip("Optimising templates needs the edit_template permission")
        self._enable()

    def _enable(self) -> None:
        has = self.template is not None
        self.evaluate_button.setEnabled(has and self.can_generate)
        self.optimise_button.setEnabled(has and self.can_edit and self.template is not None
                                        and self.template.status == "published")

    def show_template(self, info: TemplateInfo | None) -> None:
        self.template = info
        self._enable()
        if info is None:
            fill_table(self.table, [])
            return
        name = info.name
        self.context.query("template evaluations",
                           lambda op: template_eval.list_evaluations(op.store, template=name),
                           key="generate.evaluations", on_result=self._show, owner=self)

    def _show(self, rows: list[template_eval.EvaluationInfo]) -> None:
        self.evaluations = rows
        fill_table(self.table, [
            (r.template_ref.rpartition("@")[2], pct(r.score.get("accuracy")), pct(r.score.get("schema_valid_rate")),
             ece_text(r.score.get("ece")), r.score.get("items"), PURPOSE_TEXT.get(r.purpose, r.purpose), r.sheet_name,
             r.model, (r.created_at or "")[:16].replace("T", " "))
            for r in rows])
        self.fields.setText("" if rows else "Not evaluated yet: Evaluate… scores a version on a sheet's "
                                            "canonical labels.")
        if rows:
            self.table.selectRow(0)
            self._selected()

    def _selected(self) -> None:
        picked = self.table.selectionModel().selectedRows()
        if not picked or picked[0].row() >= len(self.evaluations):
            return
        score = self.evaluations[picked[0].row()].score
        parts = [f"{name} {pct(value)}" for name, value in (score.get("field_accuracy") or {}).items()]
        parts += [f"{name} mean abs. error {value:.3f}" for name, value in (score.get("mean_abs_error") or {}).items()]
        self.fields.setText("Per field: " + (", ".join(parts) or "nothing scored"))

    def open_evaluate(self) -> RunDialog | None:
        if self.template is None or not self.can_generate:
            return None
        self.dialog = EvaluateDialog(self.context, self.template, self)
        self.dialog.open()
        return self.dialog

    def open_optimise(self) -> RunDialog | None:
        if self.template is None or not self.can_edit:
            return None
        dialog = OptimiseDialog(self.context, self.template, self)
        dialog.proposed.connect_to(self.on_proposed)
        self.dialog = dialog
        dialog.open()
        return dialog


class _Callbacks:
    """A tiny one-way hook (a Qt signal would need a QObject subclass per dialog)."""

    def __init__(self) -> None:
        self._targets: list[Callable[[str], None]] = []

    def connect_to(self, target: Callable[[str], None] | None) -> None:
        if target is not None:
            self._targets.append(target)

    def emit(self, value: str) -> None:
        for target in self._targets:
            target(value)


class RunDialog(QDialog):
    """A sheet, a few settings, Start; then progress with time left, Cancel, and the result."""

    title = ""

    def __init__(self, context: AppContext, template: TemplateInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.template = template
        self.job: Any = None
        self.result: Any = None
        self.setWindowTitle(f"{self.title} {template.ref}")
        self.sheet = QComboBox()
        self.form = QFormLayout()
        self.form.addRow("Sheet", self.sheet)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.start_button = primary_button("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        self.layout_ = QVBoxLayout(self)
        self.layout_.addLayout(self.form)
        self.extra = QVBoxLayout()
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        self.layout_.addLayout(self.extra)
        self.layout_.addWidget(self.output, 1)
        self.layout_.addLayout(buttons)
        self.timer = QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._poll)
        self.resize(820, 560)
        context.query("sheets", lambda op: [s.name for s in sheet_service.list_sheets(op.store)],
                      on_result=self._show_sheets, owner=self)

    def _show_sheets(self, names: list[str]) -> None:
        self.sheet.clear()
        self.sheet.addItems(names)

    def settings(self) -> dict[str, Any]:
        """The dialog's settings, read on the GUI thread when Start is pressed."""
        return {}

    def work(self, op: OpEnv, sheet: str, settings: dict[str, Any]) -> tuple[Any, Changes]:
        raise NotImplementedError

    def show_result(self, result: Any) -> None:
        raise NotImplementedError

    def start(self) -> None:
        sheet = self.sheet.currentText()
        if not sheet or self.job is not None:
            return
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Starting…")
        settings = self.settings()
        self.job = self.context.change(f"{self.title} {self.template.ref}", lambda op: self.work(op, sheet, settings),
                                       on_result=self._done, on_error=self._failed, owner=self, cancellable=True,
                                       long=True)
        self.timer.start()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling after the current item…")

    def _poll(self) -> None:
        if self.job is None:
            return
        snap = self.job.snapshot()
        left = f", about {format_eta(snap.eta_s)} left" if snap.eta_s is not None else ""
        self.status.setText(f"{snap.done} / {snap.total} answers{left} — {snap.message}")

    def _finish(self) -> None:
        self.timer.stop()
        self.job = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _done(self, result: Any) -> None:
        self._finish()
        self.result = result
        self.status.setText("Done.")
        self.show_result(result)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        if isinstance(exc, Cancelled):
            self.status.setText("Cancelled: nothing was stored.")
            return
        self.status.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")

    def reject(self) -> None:
        if self.job is not None:  # closing the dialog stops the work (nothing half-written is kept)
            self.job.cancel()
        super().reject()


class EvaluateDialog(RunDialog):
    """Score the version on a sheet's evaluation-allowed canonical labels."""

    title = "Evaluate"

    def __init__(self, context: AppContext, template: TemplateInfo, parent: QWidget | None = None) -> None:
        super().__init__(context, template, parent)
        self.limit = QSpinBox()
        self.limit.setRange(1, 100_000)
        self.limit.setValue(20)
        self.limit.setToolTip("Score only the first N labelled items (each takes a few seconds with the "
                              "embedded model)")
        self.form.addRow("Items", self.limit)

    def settings(self) -> dict[str, Any]:
        return {"limit": self.limit.value()}

    def work(self, op: OpEnv, sheet: str, settings: dict[str, Any]) -> tuple[Any, Changes]:
        return template_eval.evaluate_template(op.store, actor=op.actor, template=self.template.ref, sheet=sheet,
                                               progress=op.progress, **settings)

    def show_result(self, result: template_eval.EvaluationInfo) -> None:
        self.output.setPlainText(result.text())


class OptimiseDialog(RunDialog):
    """Search few-shot selections and instruction variants; show the proposal beside the baseline."""

    title = "Optimise"

    def __init__(self, context: AppContext, template: TemplateInfo, parent: QWidget | None = None) -> None:
        self.proposed = _Callbacks()
        super().__init__(context, template, parent)
        self.budget = QDoubleSpinBox()
        self.budget.setRange(10, 24 * 3600)
        self.budget.setValue(300)
        self.budget.setSuffix(" s")
        self.budget.setToolTip("Time for the search; the final held-out scoring runs after it")
        self.items = QSpinBox()
        self.items.setRange(1, 500)
        self.items.setValue(6)
        self.candidates = QSpinBox()
        self.candidates.setRange(1, 50)
        self.candidates.setValue(6)
        self.form.addRow("Time budget", self.budget)
        self.form.addRow("Items per split", self.items)
        self.form.addRow("Candidates", self.candidates)
        self.form.addRow(muted_label("Few-shot examples come only from labels that allow few-shot use. The proposal "
                                     "is a new draft: review its diff and publish it, or not."))
        self.scores = _table(["", "Baseline · selection", "Proposal · selection", "Baseline · held-out",
                              "Proposal · held-out"])
        self.scores.setMaximumHeight(170)
        self.extra.addWidget(self.scores)
        self.review_button = QPushButton("Review the draft")
        self.review_button.setEnabled(False)
        self.review_button.clicked.connect(self._review)
        self.extra.addWidget(self.review_button)

    def settings(self) -> dict[str, Any]:
        return {"budget_seconds": self.budget.value(), "split_items": self.items.value(),
                "max_candidates": self.candidates.value()}

    def work(self, op: OpEnv, sheet: str, settings: dict[str, Any]) -> tuple[Any, Changes]:
        return template_optimise.optimise_template(op.store, actor=op.actor, template=self.template.ref, sheet=sheet,
                                                   progress=op.progress, **settings)

    def show_result(self, result: template_optimise.OptimisationResult) -> None:
        columns = [result.baseline.get("selection"), result.optimised.get("selection"),
                   result.baseline.get("held_out"), result.optimised.get("held_out")]
        fields: list[str] = []
        for score in columns:
            for name in (score or {}).get("field_accuracy") or {}:
                if name not in fields:
                    fields.append(name)
        rows: list[list[Any]] = [["accuracy"] + [pct((s or {}).get("accuracy")) for s in columns],
                                 ["schema-valid"] + [pct((s or {}).get("schema_valid_rate")) for s in columns],
                                 ["ECE"] + [ece_text((s or {}).get("ece")) for s in columns]]
        rows += [[f"  {name}"] + [pct(((s or {}).get("field_accuracy") or {}).get(name)) for s in columns]
                 for name in fields]
        rows.append(["items"] + [(s or {}).get("items") for s in columns])
        fill_table(self.scores, rows)
        diff = result.diff.get("diffs") or {}
        self.output.setPlainText(result.text() + ("\n\n" + "\n".join(f"--- {k} ---\n{v}" for k, v in diff.items())
                                                   if diff else ""))
        self.review_button.setEnabled(result.proposed_ref is not None)

    def _review(self) -> None:
        if self.result is not None and self.result.proposed_ref:
            self.proposed.emit(self.result.proposed_ref)
            self.accept()

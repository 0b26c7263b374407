"""The Generate Training Sheet dialog and the generation jobs it starts (and GENERATE resumes).

Sheet x published template version x AI mode, a preview of the first three pairs (rendered in a
worker), then one background job; a cancelled or interrupted generation keeps its pairs and is
resumed from GENERATE's "Unfinished generations".
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import VitalError
from vital_desktop.services import generate as generate_service
from vital_desktop.services import generate_render
from vital_desktop.services import llm_evidence
from vital_desktop.services import sheets as sheet_service
from vital_desktop.services import templates as template_service
from vital_desktop.services.templates import TemplateInfo
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.widgets import compact_combo, error_text, fill_combo, muted_label, primary_button, title_label

AI_MODE_TEXT = {"none": "No AI pre-label (canonical labels only)", "classifier": "ONNX image classifier",
                "llm": "Language model (llama.cpp)", "both": "Classifier + language model"}

def fits(template: TemplateInfo, columns: list[str]) -> str | None:
    """Why `template` cannot run on a sheet with `columns` (its missing fields), or None if it fits."""
    try:
        template_service.check_against_columns(template, columns)
    except VitalError as exc:
        return exc.message
    return None


def messages_text(messages: list[dict]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(c.get("text") or f"[{c.get('type')}: {c.get('image_url') or c.get('path') or ''}]"
                                for c in content if isinstance(c, dict))
        parts.append(f"[{message.get('role', '?')}]\n{content}")
    return "\n\n".join(parts)


class GenerateDialog(QDialog):
    """Sheet × published template version × AI mode, a preview of three pairs, then generate.

    Only templates that fit the chosen sheet (their placeholders and required inputs are columns
    of it) are offered; the others are counted with the reason, so nothing fails after Generate.
    """

    def __init__(self, context: AppContext, template: TemplateInfo | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.wanted = template
        self.sheets: list[sheet_service.SheetInfo] = []
        self.published: list[TemplateInfo] = []
        self.preview_rows: list[dict] | None = None
        self.setWindowTitle("Generate Training Sheet")
        self.sheet = compact_combo()
        self.template = compact_combo()
        self.unfit = muted_label("")
        self.ai_mode = QComboBox()
        for mode in generate_service.AI_MODES:
            self.ai_mode.addItem(AI_MODE_TEXT.get(mode, mode), mode)
        self.ai_mode.currentIndexChanged.connect(self._estimate)
        self.estimate = muted_label("")
        self.refusal = QLabel("")
        self.refusal.setWordWrap(True)
        self.refusal.setVisible(False)
        self.refused = False
        # Trial run: only the first N items that need a pre-label (0 = all); Resume continues it.
        self.limit = QSpinBox()
        self.limit.setRange(0, 10_000_000)
        self.limit.setSpecialValueText("all items")
        self.limit.setSuffix(" items to pre-label")
        self.limit.setToolTip("A trial run pre-labels only the first N items that need it, so you see quality and "
                              "speed first; Resume on GENERATE continues the rest.")
        self.limit.valueChanged.connect(self._estimate)
        self.name = QLineEdit()
        self.preview = QTableWidget(0, 3)
        self.preview.setHorizontalHeaderLabels(["item", "pre-approval", "rendered prompt"])
        self.preview.verticalHeader().hide()
        self.preview.setWordWrap(True)
        self.preview.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.message = QLabel("Loading sheets and templates…")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Sheet", self.sheet)
        form.addRow("Template version", self.template)
        form.addRow("", self.unfit)
        form.addRow("AI mode", self.ai_mode)
        form.addRow("Trial run", self.limit)
        form.addRow("", self.estimate)
        form.addRow("", self.refusal)
        form.addRow("Training sheet name", self.name)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.generate_button = primary_button("Generate")
        self.generate_button.setEnabled(False)
        buttons.addButton(self.generate_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.start)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(title_label("Preview: the first three pairs"))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.sheet.currentIndexChanged.connect(self._sheet_changed)
        self.template.currentIndexChanged.connect(self.refresh_preview)
        self.resize(860, 560)
        self.job = None
        context.query("sheets and templates", lambda op: (
            sheet_service.list_sheets(op.store),
            [t for t in template_service.list_templates(op.store, all_versions=True) if t.status == "published"]),
            on_result=self._loaded, owner=self)

    def _loaded(self, value: tuple[list, list[TemplateInfo]]) -> None:
        self.sheets, self.published = value
        fill_combo(self.sheet, [(s.name, None) for s in self.sheets])
        if not self.sheets:
            self.message.setText("There are no sheets yet: create one on DATA first.")
            return
        self._sheet_changed()

    def current_sheet(self) -> sheet_service.SheetInfo | None:
        index = self.sheet.currentIndex()
        return self.sheets[index] if 0 <= index < len(self.sheets) else None

    def _sheet_changed(self) -> None:
        """Offer the templates that fit the sheet; keep the one the user had chosen if it fits."""
        sheet = self.current_sheet()
        chosen = self.chosen_template()
        wanted = chosen or self.wanted
        fitting: list[TemplateInfo] = []
        unfit: list[str] = []
        for info in self.published:
            problem = fits(info, list(sheet.columns)) if sheet is not None else None
            if problem is None:
                fitting.append(info)
            else:
                unfit.append(info.ref)
        prefer: list[Callable[[Any], bool]] = []
        if wanted is not None:  # the version chosen before; for a draft, its latest published version
            ref, name = wanted.ref, wanted.name
            prefer = [lambda info: info.ref == ref, lambda info: info.name == name]
        fill_combo(self.template, [(f"{info.ref}  ({info.label_type})", info) for info in fitting], prefer)
        self.unfit.setText(f"{len(unfit)} published template version(s) do not fit this sheet (they need fields "
                           f"it lacks): {', '.join(unfit[:4])}{'…' if len(unfit) > 4 else ''}" if unfit else "")
        self.unfit.setVisible(bool(unfit))
        self.refresh_preview()

    def chosen_template(self) -> TemplateInfo | None:
        return self.template.currentData()

    def _estimate(self) -> None:
        """A rough time for the chosen AI mode (the language model is the slow one), and whether the
        language model would be refused for this template (an image it cannot see, with no evidence)."""
        sheet, mode = self.current_sheet(), self.ai_mode.currentData()
        self._check_evidence()
        seconds = ESTIMATE_SECONDS_PER_ITEM.get(mode)
        if sheet is None or not seconds:
            self.estimate.setText("")
            self.estimate.setVisible(False)
            return
        count = min(sheet.item_count, self.limit.value()) if self.limit.value() else sheet.item_count
        total = seconds * count
        self.estimate.setText(f"About {format_duration(total)} for {count:,} items on this laptop "
                              f"(~{seconds:g} s per item); you can cancel and resume it later.")
        self.estimate.setVisible(True)

    def _check_evidence(self) -> None:
        template, mode, sheet = self.chosen_template(), self.ai_mode.currentData(), self.current_sheet()
        if template is None or mode not in ("llm", "both") or sheet is None:
            self._show_refusal(None)
            return
        columns = list(sheet.columns or []) or None
        self.context.query("language model evidence", lambda op: llm_evidence.refusal_reason(op.store, template, columns),
                           key=f"evidence:{id(self)}", on_result=self._show_refusal, owner=self)

    def _show_refusal(self, reason: str | None) -> None:
        self.refused = reason is not None
        self.refusal.setText(f"<span style='color:{theme.DANGER}'>{html.escape(reason)}</span>" if reason else "")
        self.refusal.setVisible(reason is not None)
        self.generate_button.setEnabled(self.preview_rows is not None and not self.refused)

    def refresh_preview(self) -> None:
        template, sheet = self.chosen_template(), self.sheet.currentText()
        self._estimate()
        if template is None or not sheet:
            self.preview.setRowCount(0)
            self.message.setText("Needs a sheet and a published template that fits it.")
            self.generate_button.setEnabled(False)
            return
        self.name.setText(f"{template.name} v{template.version} on {sheet} {dt.datetime.now():%Y-%m-%d %H%M%S}")
        self.generate_button.setEnabled(False)
        self.preview_rows = None
        self.message.setText("Rendering the preview…")
        self.context.query("preview", lambda op: generate_render.preview_pairs(op.store, sheet, template),
                           key=f"preview:{id(self)}", on_result=self._show_preview, on_error=self._preview_failed, owner=self)

    def _preview_failed(self, exc: BaseException) -> None:
        self.preview.setRowCount(0)
        self.message.setText(f"<span style='color:{theme.DANGER}'>{html.escape(error_text(exc))}</span>")
        self.generate_button.setEnabled(False)

    def _show_preview(self, rows: list[dict]) -> None:
        self.preview_rows = rows
        self.generate_button.setEnabled(not self.refused)
        self.message.setText("")
        self.preview.setRowCount(len(rows))
        for row, pair in enumerate(rows):
            label = pair["label"]
            state = (f"pre-approved (canonical v{label.version}: {readable(label.label_data)})" if label
                     else "needs review")
            cells = (pair["item_ref"], state, messages_text(pair["messages"])[:600])
            for col, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if col == 1:
                    cell.setForeground(QColor(theme.SUCCESS if label else theme.WARNING))
                self.preview.setItem(row, col, cell)
        self.preview.resizeColumnToContents(0)
        self.preview.setColumnWidth(1, 220)
        self.preview.resizeRowsToContents()
        self.generate_button.setFocus()

    def start(self) -> None:
        """Start generation in the background; LABEL opens on the new training sheet when it is done."""
        template = self.chosen_template()
        if template is None or not self.generate_button.isEnabled():
            return
        arguments = {"sheet": self.sheet.currentText(), "template": template.ref, "name": self.name.text().strip(),
                     "ai_mode": self.ai_mode.currentData()}
        if self.limit.value():
            arguments["limit"] = self.limit.value()
        self.job = start_generation(self.context, arguments)
        self.accept()


#: rough seconds per item of each AI mode on a 2-core laptop: a language-model answer reads ~260 new
#: prompt tokens per item (the item, its evidence and context) besides the cached shared start, and
#: is scored for its per-field confidence — ~3 s on an idle 2-core machine, far more under load
#: (benchmarks/results/generate_llm_memory.json); a trial run shows the real rate first.
ESTIMATE_SECONDS_PER_ITEM: dict[str, float] = {"llm": 3.0, "both": 3.0}


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '3.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def readable(value: Any) -> str:
    """A label's data as 'key: value, …' (not JSON or a Python repr)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value) or "—"
    return "—" if value is None else str(value)


def start_generation(context: AppContext, arguments: dict) -> Any:
    """Run (or, with ``resume=True``, continue) a generation; LABEL opens on it when it is done."""

    def done(result: generate_service.GenerationResult) -> None:
        context.say(f"Training sheet {result.training_sheet.name}: {result.summary.pre_approved} pre-approved, "
                    f"{result.summary.needs_review} to review.")
        context.navigate("label", training_sheet=result.training_sheet.name)

    verb = "Resuming" if arguments.get("resume") else "Generating"
    job = context.change(
        f"{verb} {arguments['name']}",
        lambda op: generate_service.generate_training_sheet(op.store, actor=op.actor, progress=op.progress,
                                                            **arguments),
        on_result=done, on_error=lambda exc: _generation_stopped(context, arguments["name"], exc),
        cancellable=True)
    job.generation_name = arguments["name"]  # type: ignore[attr-defined]
    return job


def running_generations(context: AppContext) -> set[str]:
    """Names of the training sheets this window is generating right now."""
    return {name for job in context.jobs.jobs if (name := getattr(job, "generation_name", None))}


def _generation_stopped(context: AppContext, name: str, exc: BaseException) -> None:
    """A cancelled generation keeps its pairs: say so and point at Resume (on GENERATE)."""
    from vital_desktop.core.errors import Cancelled

    context.announce(Changes(training_sheets=True, pairs=True))
    if isinstance(exc, Cancelled):
        context.say(f"Generation of {name} cancelled; the pairs so far are kept — Resume it on GENERATE.")
        return
    context.jobs.failed.emit(f"Generating {name}", exc)

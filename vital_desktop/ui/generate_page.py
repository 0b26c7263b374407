"""GENERATE stage: the template library, a template's detail and versions, drafts, publishing,
and the Generate Training Sheet dialog (preview of three pairs, then a background run).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.services import generate as generate_service
from vital_desktop.services import labels as label_service
from vital_desktop.services import templates as template_service
from vital_desktop.services.templates import TemplateInfo
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.generate_dialog import GenerateDialog, running_generations, start_generation
from vital_desktop.ui.generate_dialog import messages_text as messages_text  # re-exported (LABEL review)
from vital_desktop.ui.operations import OpEnv
from vital_desktop.ui.pages import Page
from vital_desktop.ui.template_quality import QualityTab
from vital_desktop.ui.permissions import gate, permitted, reason_label
from vital_desktop.ui.widgets import (
    Card,
    ElidedLabel,
    error_text,
    fill_combo,
    muted_label,
    page_layout,
    primary_button,
    show_error,
    title_label,
)

PLACEHOLDER = re.compile(r"\{\{\s*[\w.]+\s*\}\}")


def monospace() -> QFont:
    font = QFont("DejaVu Sans Mono")
    font.setStyleHint(QFont.StyleHint.Monospace)
    font.setPointSizeF(9.5)
    return font


class PlaceholderHighlighter(QSyntaxHighlighter):
    """Shows `{{placeholders}}` of a user prompt in the accent colour."""

    def highlightBlock(self, text: str) -> None:
        style = QTextCharFormat()
        style.setForeground(QColor(theme.ACCENT))
        style.setBackground(QColor(theme.ACCENT_SOFT))
        style.setFontWeight(QFont.Weight.Bold)
        for match in PLACEHOLDER.finditer(text):
            self.setFormat(match.start(), match.end() - match.start(), style)


def read_only_text(*, mono: bool = False) -> QPlainTextEdit:
    edit = QPlainTextEdit()
    edit.setReadOnly(True)
    if mono:
        edit.setFont(monospace())
    return edit


class TemplateEditor(QDialog):
    """Create a template or edit one (a published version gets a new draft version)."""

    def __init__(self, context: AppContext, template: TemplateInfo | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.template = template
        self.saved: TemplateInfo | None = None
        self.setWindowTitle(f"Edit {template.ref}" if template else "New template")
        self.name = QLineEdit(template.name if template else "")
        self.name.setEnabled(template is None)
        self.label_type = QComboBox()
        context.query("label types", lambda op: {n: t.title for n, t in label_service.label_types(op.store).items()},
                      on_result=self._show_label_types, owner=self)
        self.description = QLineEdit(template.description if template else "")
        self.system_prompt = QPlainTextEdit(template.system_prompt if template else "")
        self.user_prompt = QPlainTextEdit(template.user_prompt if template else "")
        PlaceholderHighlighter(self.user_prompt.document())
        self.input_schema = QPlainTextEdit(json.dumps(template.input_schema, indent=2) if template else
                                           '{"type": "object", "properties": {}}')
        self.output_schema = QPlainTextEdit(json.dumps(template.output_schema, indent=2) if template else
                                            '{"type": "object", "properties": {}}')
        for edit in (self.input_schema, self.output_schema):
            edit.setFont(monospace())
        self.message = QLabel("")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Label type", self.label_type)
        form.addRow("Description", self.description)
        form.addRow("System prompt", self.system_prompt)
        form.addRow("User prompt", self.user_prompt)
        form.addRow("Input schema", self.input_schema)
        form.addRow("Output schema", self.output_schema)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        self.saving = False
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        if template and template.status == "published":
            layout.addWidget(muted_label(f"{template.ref} is published and immutable: saving creates a new draft "
                                         "version."))
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(760, 720)

    def _show_label_types(self, titles: dict[str, str]) -> None:
        current = self.template.label_type if self.template else None
        fill_combo(self.label_type, [(title, name) for name, title in titles.items()],
                   [lambda name: name == current] if current is not None else [])

    def spec(self) -> dict:
        try:
            input_schema = json.loads(self.input_schema.toPlainText())
            output_schema = json.loads(self.output_schema.toPlainText())
        except json.JSONDecodeError as exc:
            raise template_service.ValidationError(f"a schema is not valid JSON: {exc.msg} (line {exc.lineno})") \
                from None
        return {"label_type": self.label_type.currentData(), "description": self.description.text(),
                "system_prompt": self.system_prompt.toPlainText(), "user_prompt": self.user_prompt.toPlainText(),
                "input_schema": input_schema, "output_schema": output_schema}

    def save(self) -> None:
        """Save on the writer thread; a refusal is shown in the dialog and the text is kept."""
        try:
            spec = self.spec()
        except Exception as exc:  # noqa: BLE001 - shown in the dialog; nothing was written
            self._refused(exc)
            return
        name, template = self.name.text().strip(), self.template

        def save(op: OpEnv) -> tuple[TemplateInfo, Changes]:
            if template is None:
                return template_service.create_template(op.store, actor=op.actor, spec={"name": name, **spec})
            return template_service.edit_template(op.store, actor=op.actor, ref=template.ref, changes=spec)

        self.saving = True
        self.save_button.setEnabled(False)
        self.message.setText("Saving…")
        self.context.change("Saving template", save, on_result=self._saved, on_error=self._refused, owner=self,
                            visible=False)

    def _saved(self, info: TemplateInfo) -> None:
        self.saving = False
        self.saved = info
        self.accept()

    def _refused(self, exc: BaseException) -> None:
        self.saving = False
        self.save_button.setEnabled(True)
        self.message.setText(f"<span style='color:{theme.DANGER}'>{html.escape(error_text(exc))}</span>")


class GeneratePage(Page):
    """The template library and generation of training sheets."""

    stage = "generate"
    title = "GENERATE"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.templates: list[TemplateInfo] = []
        self.current: TemplateInfo | None = None
        self.generate_dialog: GenerateDialog | None = None
        root, header = page_layout(self, "Template library",
                                   "Versioned prompts that turn a sheet into Q&A pairs.")
        self.version_list: list[TemplateInfo] = []
        self.unfinished: list[generate_service.TrainingSheetInfo] = []
        self.new_button = QPushButton("New template…")
        self.new_button.clicked.connect(lambda: self.open_editor(None))
        self.generate_button = primary_button("Generate Training Sheet…")
        self.generate_button.clicked.connect(self.open_generate)
        header.addWidget(self.new_button)
        header.addWidget(self.generate_button)
        self.reason = reason_label()
        root.addWidget(self.reason)
        self.can_edit = gate(context.user, "edit_template", [self.new_button], self.reason,
                             "Creating and editing templates")
        self.can_publish = permitted(context.user, "publish_template")
        self.can_generate = gate(context.user, "generate", [self.generate_button], None, "Generating training sheets")
        if not self.can_generate and self.can_edit:
            self.reason.setText(self.generate_button.toolTip())
            self.reason.setVisible(True)

        self.resume_card = Card("Unfinished generations")
        self.resume_table = QTableWidget(0, 4)
        self.resume_table.setHorizontalHeaderLabels(["Training sheet", "Status", "Template", "Sheet"])
        self.resume_table.verticalHeader().hide()
        self.resume_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.resume_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.resume_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.resume_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.resume_table.setMaximumHeight(110)
        resume_row = QHBoxLayout()
        resume_row.addWidget(muted_label("A cancelled, interrupted or trial-run generation keeps its pairs; Resume "
                                         "continues where it stopped."), 1)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self.resume_selected())
        resume_row.addWidget(self.resume_button)
        self.resume_card.body.addWidget(self.resume_table)
        self.resume_card.body.addLayout(resume_row)
        self.resume_card.hide()
        root.addWidget(self.resume_card)
        root.addWidget(self._generation_progress_card())

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Template", "Version", "Status", "Label type"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selected)
        self.table.setMinimumWidth(430)  # template names are long; the detail pane takes the rest
        library = Card("Templates")
        library.body.addWidget(self.table)
        splitter.addWidget(library)

        detail = Card()
        title_row = QHBoxLayout()
        self.detail_title = ElidedLabel("", minimum=120)
        self.detail_title.setObjectName("sectionTitle")
        self.detail_status = QLabel("")
        self.detail_status.setTextFormat(Qt.TextFormat.RichText)
        self.detail_status.setWordWrap(True)
        title_row.addWidget(self.detail_title, 2)
        title_row.addWidget(self.detail_status, 3)
        self.edit_button = QPushButton("Edit…")
        self.edit_button.clicked.connect(lambda: self.open_editor(self.current))
        self.publish_button = QPushButton("Publish")
        self.publish_button.setToolTip("Publish this draft version: it becomes immutable and usable for generation")
        self.publish_button.clicked.connect(self.publish)
        title_row.addWidget(self.edit_button)
        title_row.addWidget(self.publish_button)
        detail.body.addLayout(title_row)
        self.description = muted_label("")
        detail.body.addWidget(self.description)
        self.tabs = QTabWidget()
        prompts = QWidget()
        prompts_layout = QVBoxLayout(prompts)
        self.system_prompt = read_only_text()
        self.user_prompt = read_only_text()
        PlaceholderHighlighter(self.user_prompt.document())
        prompts_layout.addWidget(title_label("System prompt"))
        prompts_layout.addWidget(self.system_prompt, 2)
        prompts_layout.addWidget(title_label("User prompt  (placeholders highlighted)"))
        prompts_layout.addWidget(self.user_prompt, 3)
        self.tabs.addTab(prompts, "Prompts")
        schemas = QSplitter(Qt.Orientation.Horizontal)
        self.input_schema = read_only_text(mono=True)
        self.output_schema = read_only_text(mono=True)
        for title, edit in (("Input schema", self.input_schema), ("Output schema", self.output_schema)):
            box = QWidget()
            box_layout = QVBoxLayout(box)
            box_layout.addWidget(title_label(title))
            box_layout.addWidget(edit)
            schemas.addWidget(box)
        self.tabs.addTab(schemas, "Schemas")
        self.few_shot = read_only_text(mono=True)
        self.tabs.addTab(self.few_shot, "Few-shot examples")
        versions = QWidget()
        versions_layout = QVBoxLayout(versions)
        self.versions = QTableWidget(0, 4)
        self.versions.setHorizontalHeaderLabels(["Version", "Status", "By", "Created"])
        self.versions.verticalHeader().hide()
        self.versions.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.versions.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.versions.horizontalHeader().setStretchLastSection(True)
        self.versions.setMaximumHeight(160)
        self.versions.itemSelectionChanged.connect(self._version_selected)
        self.diff = QTextEdit()
        self.diff.setReadOnly(True)
        self.diff.setFont(monospace())
        versions_layout.addWidget(self.versions)
        versions_layout.addWidget(muted_label("Select a version to see what changed from the one before it."))
        versions_layout.addWidget(self.diff, 1)
        self.versions_tab = self.tabs.addTab(versions, "Versions")
        self.quality = QualityTab(context, on_proposed=self.show_proposal)
        self.tabs.addTab(self.quality, "Quality")
        detail.body.addWidget(self.tabs, 1)
        splitter.addWidget(detail)
        splitter.setSizes([560, 760])
        splitter.setStretchFactor(1, 1)
        root.addWidget(splitter, 1)
        self.reload()

    # --- library ---------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        """Load the library (latest version of each template) and the unfinished generations."""
        select = select or (self.current.name if self.current else None)
        self.context.query("template library", lambda op: (
            template_service.list_templates(op.store),
            [t for t in generate_service.list_training_sheets(op.store) if t.status != "complete"]),
            key="generate.library", on_result=lambda value: self._show_library(value, select))

    def _show_library(self, value: tuple[list[TemplateInfo], list], select: str | None) -> None:
        self.templates, self.unfinished = value
        self._show_unfinished()
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.templates))
        for row, info in enumerate(self.templates):
            for col, text in enumerate((info.name, info.version, info.status, info.label_type)):
                cell = QTableWidgetItem(text)
                cell.setToolTip(text)
                if col == 2:
                    cell.setForeground(QColor(theme.SUCCESS if info.status == "published" else theme.WARNING))
                self.table.setItem(row, col, cell)
        header = self.table.horizontalHeader()
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(False)
        self.table.blockSignals(False)
        names = [t.name for t in self.templates]
        if self.templates:
            self.table.selectRow(names.index(select) if select in names else 0)
            self._selected()
        else:
            self.show_template(None)

    def _show_unfinished(self) -> None:
        running = running_generations(self.context)
        rows = [t for t in self.unfinished if t.name not in running]
        self.resume_table.setRowCount(len(rows))
        for r, info in enumerate(rows):
            for c, text in enumerate((info.name, "interrupted" if info.status == "generating" else info.status,
                                      info.template_ref, info.sheet_name)):
                cell = QTableWidgetItem(text)
                cell.setToolTip(text)
                if c == 0:
                    cell.setData(Qt.ItemDataRole.UserRole, info.name)
                self.resume_table.setItem(r, c, cell)
        if rows:
            self.resume_table.selectRow(0)
        self.resume_button.setEnabled(bool(rows) and self.can_generate)
        self.resume_card.setVisible(bool(rows))

    def _generation_progress_card(self) -> Card:
        """Running generations: a bar per item (or batch) with items done, rate and time left, polled."""
        self.progress_card = Card("Generating now")
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.progress_text = muted_label("")
        self.progress_card.body.addWidget(self.progress_bar)
        self.progress_card.body.addWidget(self.progress_text)
        self.progress_card.hide()
        self.progress_timer = QTimer(self)
        self.progress_timer.setInterval(250)
        self.progress_timer.timeout.connect(self.poll_generation)
        self.progress_timer.start()
        return self.progress_card

    def poll_generation(self) -> None:
        """Show the first running generation's progress (its message carries the rate and time left)."""
        job = next((j for j in self.context.jobs.jobs if getattr(j, "generation_name", None)), None)
        if job is None:
            self.progress_card.setVisible(False)
            return
        snap = job.snapshot()
        self.progress_card.setVisible(True)
        self.progress_bar.setRange(0, max(1, snap.total))
        self.progress_bar.setValue(min(snap.done, snap.total))
        self.progress_bar.setFormat(f"{getattr(job, 'generation_name', '')}: %v / %m")
        self.progress_text.setText(snap.message or "starting…")

    def resume_selected(self) -> None:
        """Continue the selected cancelled or interrupted generation in the background."""
        rows = self.resume_table.selectionModel().selectedRows()
        if not rows or not self.can_generate:
            return
        cell = self.resume_table.item(rows[0].row(), 0)
        if cell is None:
            return
        name = cell.data(Qt.ItemDataRole.UserRole)
        start_generation(self.context, {"sheet": None, "template": None, "name": name, "resume": True})
        self.resume_card.hide()

    def on_changes(self, changes: Changes) -> None:
        if changes.templates or changes.training_sheets:
            self.reload()

    def activate(self, **arguments: Any) -> None:
        if arguments.get("template"):
            self.reload(select=arguments["template"])

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.show_template(self.templates[rows[0].row()])

    def show_template(self, info: TemplateInfo | None) -> None:
        self.current = info
        self.target = info  # the version Publish acts on (a draft chosen in the Versions tab)
        self.quality.show_template(info)
        self.publish_button.setText("Publish")
        self.edit_button.setEnabled(info is not None and self.can_edit)
        self.publish_button.setEnabled(info is not None and info.status == "draft" and self.can_publish)
        if not self.can_edit:
            self.edit_button.setToolTip(self.new_button.toolTip())
        if info is None:
            self.detail_title.setText("No templates")
            return
        self.detail_title.setText(info.ref)
        color = theme.SUCCESS if info.status == "published" else theme.WARNING
        self.detail_status.setText(f"<span style='color:{color}; font-weight:600'>● {info.status}</span>"
                                   f"<span style='color:{theme.MUTED}'> · label type {info.label_type}"
                                   f" · {len(info.placeholders)} placeholders</span>")
        self.description.setText(info.description or "")
        self.system_prompt.setPlainText(info.system_prompt)
        self.user_prompt.setPlainText(info.user_prompt)
        self.input_schema.setPlainText(json.dumps(info.input_schema, indent=2))
        self.output_schema.setPlainText(json.dumps(info.output_schema, indent=2))
        self.few_shot.setPlainText(json.dumps(info.few_shot, indent=2) if info.few_shot else "No few-shot examples.")
        name = info.name
        self.context.query("template versions",
                           lambda op: template_service.list_templates(op.store, name=name, all_versions=True),
                           key="generate.versions", on_result=self._show_versions)

    def _show_versions(self, versions: list[TemplateInfo]) -> None:
        self.version_list = versions
        self.versions.blockSignals(True)
        self.versions.setRowCount(len(self.version_list))
        for row, version in enumerate(reversed(self.version_list)):
            for col, text in enumerate((version.version, version.status, version.created_by,
                                        (version.created_at or "")[:16])):
                cell = QTableWidgetItem(text)
                if col == 1:
                    cell.setForeground(QColor(theme.SUCCESS if version.status == "published" else theme.WARNING))
                self.versions.setItem(row, col, cell)
        self.versions.blockSignals(False)
        self.diff.setPlainText("")
        # a newer draft than the version shown waits to be published: select it, so Publish acts on it
        current = self.current
        drafts = [v for v in versions if v.status == "draft" and current is not None and template_service.parse_version(
            v.version) > template_service.parse_version(current.version)]
        if drafts:
            self.versions.selectRow(list(reversed(versions)).index(drafts[-1]))
            # selectRow emits nothing when that row is already selected (show_template ran twice while
            # the versions loaded), and show_template has reset Publish: apply the selection explicitly
            self._version_selected()
            self.detail_status.setText(self.detail_status.text() + f"<span style='color:{theme.WARNING}'> · draft "
                                       f"{drafts[-1].version} waits to be published (Versions tab)</span>")

    def _version_selected(self) -> None:
        rows = self.versions.selectionModel().selectedRows()
        if not rows:
            return
        ordered = list(reversed(self.version_list))
        chosen = ordered[rows[0].row()]
        self.target = chosen
        self.publish_button.setEnabled(chosen.status == "draft" and self.can_publish)
        self.publish_button.setText(f"Publish {chosen.version}" if chosen.status == "draft" else "Publish")
        older = [v for v in self.version_list if template_service.parse_version(v.version)
                 < template_service.parse_version(chosen.version)]
        if not older:
            self.diff.setPlainText(f"{chosen.ref} is the first version.")
            return
        base = older[-1].ref
        self.context.query("template diff", lambda op: template_service.diff(op.store, base, chosen.ref).text(),
                           key="generate.diff", on_result=self.diff.setPlainText)

    # --- actions ---------------------------------------------------------------------------------
    def show_proposal(self, ref: str) -> None:
        """An optimisation proposed the draft `ref`: show it in the Versions tab, ready to review and publish."""
        self.tabs.setCurrentIndex(self.versions_tab)
        self.reload(select=template_service.split_ref(ref)[0])

    def open_editor(self, info: TemplateInfo | None) -> TemplateEditor | None:
        """The template form, only for users who may save it."""
        if not self.can_edit:
            self.context.say(self.new_button.toolTip())
            return None
        editor = TemplateEditor(self.context, info, self)
        editor.accepted.connect(lambda: self._editor_accepted(editor))
        self.editor = editor
        editor.open()
        return editor

    def _editor_accepted(self, editor: TemplateEditor) -> None:
        if editor.saved:
            self.reload(select=editor.saved.name)

    def publish(self) -> None:
        """Publish the selected draft version (on the writer thread)."""
        target = getattr(self, "target", None) or self.current
        if target is None or target.status != "draft" or not self.can_publish:
            return
        ref = target.ref
        self.publish_button.setEnabled(False)
        self.context.change(f"Publishing {ref}",
                            lambda op: template_service.publish_template(op.store, actor=op.actor, ref=ref),
                            on_result=lambda info: self.context.say(f"Published {info.ref}"),
                            on_error=lambda exc: show_error(self, "Publish", exc))

    def open_generate(self) -> GenerateDialog | None:
        if not self.can_generate:
            self.context.say(self.generate_button.toolTip())
            return None
        dialog = GenerateDialog(self.context, self.current, self)
        self.generate_dialog = dialog
        dialog.open()
        return dialog

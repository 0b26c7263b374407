"""GENERATE stage: the template library, a template's detail and versions, drafts, publishing,
and the Generate Training Sheet dialog (preview of three pairs, then a background run).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from PySide6.QtCore import Qt
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
from vital_desktop.services import sheets as sheet_service
from vital_desktop.services import templates as template_service
from vital_desktop.services.templates import TemplateInfo
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.widgets import Card, error_text, muted_label, page_layout, primary_button, show_error, title_label

PLACEHOLDER = re.compile(r"\{\{\s*[\w.]+\s*\}\}")
AI_MODE_TEXT = {"none": "No AI pre-label (canonical labels only)", "classifier": "ONNX image classifier",
                "llm": "Language model (llama.cpp)", "both": "Classifier + language model"}


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


def preview_pairs(context: AppContext, sheet: str, template: TemplateInfo, count: int = 3) -> list[dict]:
    """The first `count` pairs as generation would render them, and whether each is pre-approved."""
    out = []
    for item in sheet_service.list_items(context.store, sheet, limit=count):
        messages = generate_service.render_item(template, item.item_ref, item.metadata, item.absolute_image_path)
        label = label_service.get_label(context.store, sheet=sheet, item_ref=item.item_ref,
                                        label_type=template.label_type)
        out.append({"item_ref": item.item_ref, "messages": messages, "label": label})
    return out


def messages_text(messages: list[dict]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(c.get("text") or f"[{c.get('type')}: {c.get('image_url') or c.get('path') or ''}]"
                                for c in content if isinstance(c, dict))
        parts.append(f"[{message.get('role', '?')}]\n{content}")
    return "\n\n".join(parts)


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
        for name, label_type in label_service.label_types().items():
            self.label_type.addItem(label_type.title, name)
        if template:
            self.label_type.setCurrentIndex(max(0, self.label_type.findData(template.label_type)))
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
        store, actor = self.context.store, self.context.user
        try:
            spec = self.spec()
            if self.template is None:
                info, changes = template_service.create_template(store, actor=actor,
                                                                 spec={"name": self.name.text().strip(), **spec})
            else:
                info, changes = template_service.edit_template(store, actor=actor, ref=self.template.ref,
                                                               changes=spec)
        except Exception as exc:  # noqa: BLE001 - shown in the dialog; nothing was written
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
            return
        self.saved = info
        self.context.announce(changes)
        self.accept()


class GenerateDialog(QDialog):
    """Sheet × published template version × AI mode, a preview of three pairs, then generate."""

    def __init__(self, context: AppContext, template: TemplateInfo | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Generate Training Sheet")
        self.sheet = QComboBox()
        self.sheet.addItems([s.name for s in sheet_service.list_sheets(context.store)])
        self.template = QComboBox()
        for info in template_service.list_templates(context.store, all_versions=True):
            if info.status == "published":
                self.template.addItem(f"{info.ref}  ({info.label_type})", info)
        if template is not None:
            index = next((i for i in range(self.template.count()) if self.template.itemData(i).ref == template.ref),
                         -1)
            if index < 0:  # a draft was selected: offer its latest published version
                index = next((i for i in range(self.template.count())
                              if self.template.itemData(i).name == template.name), 0)
            self.template.setCurrentIndex(index)
        self.ai_mode = QComboBox()
        for mode in generate_service.AI_MODES:
            self.ai_mode.addItem(AI_MODE_TEXT.get(mode, mode), mode)
        self.name = QLineEdit()
        self.preview = QTableWidget(0, 3)
        self.preview.setHorizontalHeaderLabels(["item", "pre-approval", "rendered prompt"])
        self.preview.verticalHeader().hide()
        self.preview.setWordWrap(True)
        self.preview.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.preview.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Sheet", self.sheet)
        form.addRow("Template version", self.template)
        form.addRow("AI mode", self.ai_mode)
        form.addRow("Training sheet name", self.name)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.generate_button = primary_button("Generate")
        buttons.addButton(self.generate_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.start)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(title_label("Preview: the first three pairs"))
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        for combo in (self.sheet, self.template):
            combo.currentIndexChanged.connect(self.refresh_preview)
        self.refresh_preview()
        self.resize(860, 560)
        self.job = None

    def chosen_template(self) -> TemplateInfo | None:
        return self.template.currentData()

    def refresh_preview(self) -> None:
        template, sheet = self.chosen_template(), self.sheet.currentText()
        if template is None or not sheet:
            self.message.setText("Needs a sheet and a published template.")
            self.generate_button.setEnabled(False)
            return
        self.name.setText(f"{template.name} v{template.version} on {sheet} {dt.datetime.now():%Y-%m-%d %H%M%S}")
        try:
            rows = preview_pairs(self.context, sheet, template)
        except Exception as exc:  # noqa: BLE001 - e.g. the template's placeholders are not columns of the sheet
            self.preview.setRowCount(0)
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
            self.generate_button.setEnabled(False)
            return
        self.generate_button.setEnabled(True)
        self.message.setText("")
        self.preview.setRowCount(len(rows))
        for row, pair in enumerate(rows):
            label = pair["label"]
            state = (f"pre-approved (canonical v{label.version}: {json.dumps(label.label_data)})" if label
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

    def start(self) -> None:
        """Start generation in the background; LABEL opens on the new training sheet when it is done."""
        template = self.chosen_template()
        if template is None:
            return
        store, actor = self.context.store, self.context.user
        arguments = {"sheet": self.sheet.currentText(), "template": template.ref, "name": self.name.text().strip(),
                     "ai_mode": self.ai_mode.currentData()}
        context = self.context

        def done(result: generate_service.GenerationResult) -> None:
            context.say(f"Training sheet {result.training_sheet.name}: {result.summary.pre_approved} pre-approved, "
                        f"{result.summary.needs_review} to review.")
            context.navigate("label", training_sheet=result.training_sheet.name)

        self.job = context.run_change(
            f"Generating {arguments['name']}",
            lambda progress: generate_service.generate_training_sheet(store, actor=actor, progress=progress,
                                                                      **arguments),
            on_result=done, cancellable=True)  # errors go to the main window's error dialog
        self.accept()


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
        self.new_button = QPushButton("New template…")
        self.new_button.clicked.connect(lambda: self.open_editor(None))
        self.generate_button = primary_button("Generate Training Sheet…")
        self.generate_button.clicked.connect(self.open_generate)
        header.addWidget(self.new_button)
        header.addWidget(self.generate_button)

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
        self.detail_title = title_label("")
        self.detail_status = QLabel("")
        self.detail_status.setTextFormat(Qt.TextFormat.RichText)
        title_row.addWidget(self.detail_title)
        title_row.addWidget(self.detail_status)
        title_row.addStretch(1)
        self.edit_button = QPushButton("Edit…")
        self.edit_button.clicked.connect(lambda: self.open_editor(self.current))
        self.publish_button = QPushButton("Publish")
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
        self.tabs.addTab(versions, "Versions")
        detail.body.addWidget(self.tabs, 1)
        splitter.addWidget(detail)
        splitter.setSizes([560, 760])
        splitter.setStretchFactor(1, 1)
        root.addWidget(splitter, 1)
        self.reload()

    # --- library ---------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        select = select or (self.current.name if self.current else None)
        self.templates = template_service.list_templates(self.context.store)
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.templates))
        for row, info in enumerate(self.templates):
            for col, text in enumerate((info.name, info.version, info.status, info.label_type)):
                cell = QTableWidgetItem(text)
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

    def on_changes(self, changes: Changes) -> None:
        if changes.templates:
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
        for button in (self.edit_button, self.publish_button):
            button.setEnabled(info is not None)
        if info is None:
            self.detail_title.setText("No templates")
            return
        self.publish_button.setEnabled(info.status == "draft")
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
        self.version_list = template_service.list_templates(self.context.store, name=info.name, all_versions=True)
        self.versions.blockSignals(True)
        self.versions.setRowCount(len(self.version_list))
        for row, version in enumerate(reversed(self.version_list)):
            for col, text in enumerate((version.version, version.status, version.created_by,
                                        (version.created_at or "")[:16])):
                self.versions.setItem(row, col, QTableWidgetItem(text))
        self.versions.blockSignals(False)
        self.diff.setPlainText("")

    def _version_selected(self) -> None:
        rows = self.versions.selectionModel().selectedRows()
        if not rows:
            return
        ordered = list(reversed(self.version_list))
        chosen = ordered[rows[0].row()]
        older = [v for v in self.version_list if template_service.parse_version(v.version)
                 < template_service.parse_version(chosen.version)]
        if not older:
            self.diff.setPlainText(f"{chosen.ref} is the first version.")
            return
        result = template_service.diff(self.context.store, older[-1].ref, chosen.ref)
        self.diff.setPlainText(result.text())

    # --- actions ---------------------------------------------------------------------------------
    def open_editor(self, info: TemplateInfo | None) -> TemplateEditor:
        editor = TemplateEditor(self.context, info, self)
        editor.accepted.connect(lambda: editor.saved and self.reload(select=editor.saved.name))
        self.editor = editor
        editor.open()
        return editor

    def publish(self) -> None:
        if self.current is None:
            return
        try:
            info, changes = template_service.publish_template(self.context.store, actor=self.context.user,
                                                              ref=self.current.ref)
        except Exception as exc:  # noqa: BLE001
            show_error(self, "Publish", exc)
            return
        self.context.announce(changes)
        self.context.say(f"Published {info.ref}")

    def open_generate(self) -> GenerateDialog:
        dialog = GenerateDialog(self.context, self.current, self)
        self.generate_dialog = dialog
        dialog.open()
        return dialog

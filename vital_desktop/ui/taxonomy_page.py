"""The Taxonomy page (engineers and admins): the site's label types, their classes with colours
and shortcut keys (drag to reorder), attribute fields, each change previewed before it is
applied, publish, diff between versions, and the history of changes.

Every read and write goes through services (`label_types`, `label_type_edits`, `taxonomy`) in
the context's jobs; the page never sees the store.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
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
from vital_desktop.services import label_type_edits, label_types, taxonomy
from vital_desktop.services.label_types import KINDS, LabelType
from vital_desktop.ui.charts import fill_table, read_only_table
from vital_desktop.ui.permissions import permitted
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.widgets import Card, error_text, muted_label, page_layout, primary_button

#: the evolution verbs the page offers: button text -> (action, what its text field holds)
VERBS: dict[str, tuple[str, str]] = {
    "Add class": ("add_class", "new class name"),
    "Rename": ("rename_class", "new name of the selected class"),
    "Merge into": ("merge_classes", "class the selected classes become"),
    "Split into": ("split_class", "comma-separated new classes"),
    "Deprecate": ("deprecate_class", ""),
}


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class TaxonomyPage(Page):
    """The site's label types and how they change."""

    stage = "taxonomy"
    title = "TAXONOMY"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.types: dict[str, LabelType] = {}
        self.current: LabelType | None = None
        self.pending: tuple[str, dict] | None = None  # the previewed change, applied by Apply
        self._reloads = 0
        self.can_edit = permitted(context.user, "edit_taxonomy")
        root, _header = page_layout(self, "Taxonomy", "The site's label types: classes, colours, keys and "
                                                     "fields; every change is previewed, then versioned.")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter, 1)
        splitter.addWidget(self._build_type_list())
        splitter.addWidget(self._build_classes())
        splitter.addWidget(self._build_versions())
        splitter.setSizes([260, 560, 480])
        self.message = muted_label()
        root.addWidget(self.message)
        if not self.can_edit:
            for widget in self.findChildren(QPushButton):
                widget.setEnabled(False)
                widget.setToolTip("Changing the taxonomy needs the engineer or admin role")
        self.reload()

    # --- layout ---------------------------------------------------------------------------------
    def _build_type_list(self) -> QWidget:
        card = Card("Label types")
        self.type_list = QListWidget()
        self.type_list.currentItemChanged.connect(lambda item, _old: self._type_selected(item))
        card.body.addWidget(self.type_list, 1)
        form = QFormLayout()
        self.new_name = QLineEdit()
        self.new_name.setPlaceholderText("name (a slug, e.g. welds)")
        self.new_kind = QComboBox()
        self.new_kind.addItems(list(KINDS))
        self.new_classes = QLineEdit()
        self.new_classes.setPlaceholderText("classes, comma-separated")
        self.new_draft = QCheckBox("keep as draft")
        form.addRow("Name", self.new_name)
        form.addRow("Kind", self.new_kind)
        form.addRow("Classes", self.new_classes)
        form.addRow("", self.new_draft)
        card.body.addLayout(form)
        self.create_button = QPushButton("Create label type")
        self.create_button.clicked.connect(lambda: self.create_type())
        for edit in (self.new_name, self.new_classes):  # Enter in the form creates, as the button does
            edit.returnPressed.connect(lambda: self.create_type())
        card.body.addWidget(self.create_button)
        return card

    def _build_classes(self) -> QWidget:
        card = Card("Classes (drag to reorder)")
        self.class_list = QListWidget()
        self.class_list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.class_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.class_list.currentItemChanged.connect(lambda item, _old: self._class_selected(item))
        card.body.addWidget(self.class_list, 1)
        looks = QHBoxLayout()
        self.class_title = QLineEdit()
        self.class_title.setPlaceholderText("title")
        self.class_color = QLineEdit()
        self.class_color.setPlaceholderText("#rrggbb")
        self.class_color.setMaximumWidth(90)
        pick = QPushButton("Colour…")
        pick.clicked.connect(lambda: self._pick_color())
        self.class_key = QLineEdit()
        self.class_key.setPlaceholderText("key")
        self.class_key.setMaxLength(1)
        self.class_key.setMaximumWidth(44)
        for widget in (self.class_title, self.class_color, pick, self.class_key):
            looks.addWidget(widget)
        self.looks_button = QPushButton("Preview order && looks")
        self.looks_button.clicked.connect(lambda: self.preview_looks())
        for edit in (self.class_title, self.class_color, self.class_key):
            edit.returnPressed.connect(lambda: self.preview_looks())
        looks.addWidget(self.looks_button)
        card.body.addLayout(looks)
        verbs = QHBoxLayout()
        self.verb = QComboBox()
        self.verb.addItems(list(VERBS))
        self.verb_arg = QLineEdit()
        self.verb.currentTextChanged.connect(lambda text: self.verb_arg.setPlaceholderText(VERBS[text][1]))
        self.verb_arg.setPlaceholderText(VERBS["Add class"][1])
        self.preview_button = QPushButton("Preview")
        self.preview_button.clicked.connect(lambda: self.preview_verb())
        self.verb_arg.returnPressed.connect(lambda: self.preview_verb())
        for verb_widget in (self.verb, self.verb_arg, self.preview_button):
            verbs.addWidget(verb_widget)
        card.body.addLayout(verbs)
        card.body.addWidget(muted_label("Attribute fields (JSON list of {name, title, type, choices, required})"))
        self.attributes = QPlainTextEdit()
        self.attributes.setMaximumHeight(110)
        card.body.addWidget(self.attributes)
        self.attributes_button = QPushButton("Preview attribute fields")
        self.attributes_button.clicked.connect(lambda: self.preview_attributes())
        card.body.addWidget(self.attributes_button)
        self.impact = muted_label()
        card.body.addWidget(self.impact)
        row = QHBoxLayout()
        self.apply_button = primary_button("Apply")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(lambda: self.apply_pending())
        self.publish_button = QPushButton("Publish draft")
        self.publish_button.clicked.connect(lambda: self.publish())
        row.addWidget(self.apply_button)
        row.addWidget(self.publish_button)
        row.addStretch(1)
        card.body.addLayout(row)
        return card

    def _build_versions(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        diff_card = Card("Diff between versions")
        pick = QHBoxLayout()
        self.diff_from = QComboBox()
        self.diff_to = QComboBox()
        diff_button = QPushButton("Diff")
        diff_button.clicked.connect(lambda: self.show_diff())
        for widget in (self.diff_from, self.diff_to, diff_button):
            pick.addWidget(widget)
        diff_card.body.addLayout(pick)
        self.diff_text = QPlainTextEdit()
        self.diff_text.setReadOnly(True)
        diff_card.body.addWidget(self.diff_text, 1)
        layout.addWidget(diff_card, 1)
        history_card = Card("History")
        self.history = read_only_table(["when", "by", "change", "versions", "relabelled", "flagged"])
        history_card.body.addWidget(self.history, 1)
        layout.addWidget(history_card, 1)
        return box

    # --- data -----------------------------------------------------------------------------------
    def on_changes(self, changes: Changes) -> None:
        if changes.label_types:
            self.reload()

    def reload(self, select: str | None = None) -> None:
        wanted = select or (self.current.name if self.current else None)
        self._reloads += 1
        number = self._reloads
        self.context.query("Label types", lambda op: label_types.list_label_types(op.store, drafts=True),
                           on_result=lambda types: self._show_types(types, wanted, number), owner=self)

    def _show_types(self, types: dict[str, LabelType], select: str | None, number: int = 0) -> None:
        if number and number != self._reloads:
            return  # a newer reload is on its way (reads may finish out of order)
        self.types = types
        self.type_list.blockSignals(True)
        self.type_list.clear()
        for name, lt in types.items():
            item = QListWidgetItem(f"{lt.title}  ·  {name}@{lt.version}" + ("  (draft)" if lt.status == "draft" else ""))
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.type_list.addItem(item)
        self.type_list.blockSignals(False)
        names = list(types)
        if names:
            self.type_list.setCurrentRow(names.index(select) if select in names else 0)
        else:
            self._show_type(None)

    def _type_selected(self, item: QListWidgetItem | None) -> None:
        self._show_type(self.types.get(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None)

    def _show_type(self, lt: LabelType | None) -> None:
        self.current, self.pending = lt, None
        self.apply_button.setEnabled(False)
        self.impact.setText("")
        self.class_list.clear()
        if lt is None:
            return
        colors = lt.colors()
        for c in lt.class_list:
            text = f"{c.shortcut or ' '}  {c.name}" + (f" — {c.title}" if c.title and c.title != c.name else "")
            item = QListWidgetItem(_swatch(colors[c.name]), text + ("  (deprecated)" if c.deprecated else ""))
            item.setData(Qt.ItemDataRole.UserRole, c.to_dict() | {"color": colors[c.name]})
            self.class_list.addItem(item)
        self.attributes.setPlainText(json.dumps([a.to_dict() for a in lt.attributes], indent=1, ensure_ascii=False))
        self.publish_button.setEnabled(self.can_edit and lt.status == "draft")
        name = lt.name
        self.context.query("Label type versions", lambda op: (label_types.versions(op.store, name),
                                                              label_type_edits.history(op.store, name)),
                           on_result=self._show_versions, owner=self)

    def _show_versions(self, result: tuple[list[LabelType], list[dict]]) -> None:
        versions, history = result
        for combo, default in ((self.diff_from, max(0, len(versions) - 2)), (self.diff_to, len(versions) - 1)):
            combo.clear()
            for v in versions:
                combo.addItem(f"{v.version} ({v.status})", v.version)
            combo.setCurrentIndex(default)
        fill_table(self.history, [((h["changed_at"] or "")[:19], h["changed_by"], h["action"],
                                   f"{h['from_version'] or '-'} → {h['to_version']}", h["labels_changed"],
                                   h["labels_flagged"]) for h in reversed(history)])

    def _class_selected(self, item: QListWidgetItem | None) -> None:
        data = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        self.class_title.setText(data["title"] if data else "")
        self.class_color.setText(data["color"] if data else "")
        self.class_key.setText(data["shortcut"] if data else "")

    def _pick_color(self) -> None:
        color = QColorDialog.getColor(QColor(self.class_color.text() or "#888888"), self, "Class colour")
        if color.isValid():
            self.class_color.setText(color.name())

    def selected_classes(self) -> list[str]:
        return [i.data(Qt.ItemDataRole.UserRole)["name"] for i in self.class_list.selectedItems()]

    # --- changes --------------------------------------------------------------------------------
    def _preview(self, action: str, args: dict) -> None:
        if self.current is None:
            return
        name = self.current.name
        self.pending = None
        self.apply_button.setEnabled(False)
        self.context.query("Preview taxonomy change", lambda op: taxonomy.preview(op.store, name, action, **args),
                           on_result=lambda impact: self._previewed(action, args, impact),
                           on_error=self._failed, owner=self)

    def _previewed(self, action: str, args: dict, impact: taxonomy.Impact) -> None:
        self.pending = (action, args)
        self.impact.setText(impact.text().replace("; run again with --yes to apply", ""))
        self.apply_button.setEnabled(self.can_edit)

    def _failed(self, exc: BaseException) -> None:
        self.pending = None
        self.apply_button.setEnabled(False)
        self.impact.setText(f"<span style='color:#c62828'>{error_text(exc)}</span>")

    def preview_verb(self) -> None:
        verb = self.verb.currentText()
        action, _ = VERBS[verb]
        text, chosen = self.verb_arg.text().strip(), self.selected_classes()
        args: dict[str, Any]
        if action == "add_class":
            args = {"name": text}
        elif action == "rename_class":
            args = {"old": chosen[0] if chosen else "", "new": text}
        elif action == "merge_classes":
            args = {"sources": chosen, "into": text}
        elif action == "split_class":
            args = {"name": chosen[0] if chosen else "", "into": [t.strip() for t in text.split(",") if t.strip()]}
        else:
            args = {"name": chosen[0] if chosen else ""}
        self._preview(action, args)

    def preview_looks(self) -> None:
        """The list's order, with the selected class's title, colour and key as edited."""
        current = self.class_list.currentItem()
        classes = []
        for row in range(self.class_list.count()):
            item = self.class_list.item(row)
            data = dict(item.data(Qt.ItemDataRole.UserRole))
            if item is current:
                data.update(title=self.class_title.text(), color=self.class_color.text(), shortcut=self.class_key.text())
            classes.append(data)
        self._preview("update_classes", {"classes": classes})

    def preview_attributes(self) -> None:
        try:
            attributes = json.loads(self.attributes.toPlainText() or "[]")
        except json.JSONDecodeError as exc:
            self._failed(ValueError(f"the attribute fields are not JSON: {exc}"))
            return
        self._preview("set_attributes", {"attributes": attributes})

    def apply_pending(self) -> None:
        if self.pending is None or self.current is None:
            return
        (action, args), name = self.pending, self.current.name
        self.apply_button.setEnabled(False)
        self.context.change("Apply taxonomy change",
                            lambda op: taxonomy.apply(op.store, op.actor, name, action, **args),
                            on_result=lambda impact: self.message.setText(impact.text()), on_error=self._failed,
                            owner=self)

    def create_type(self) -> None:
        kind = self.new_kind.currentText()
        classes = [c.strip() for c in self.new_classes.text().split(",")] if self.new_classes.text().strip() else []
        spec = {"name": self.new_name.text().strip(), "kind": kind, "classes": classes}
        draft = self.new_draft.isChecked()

        def create(op: Any) -> tuple[LabelType, Changes]:
            return label_type_edits.create_label_type(op.store, op.actor, spec, draft=draft), Changes(label_types=True)

        self.context.change("Create label type", create, on_result=self._created, on_error=self._failed, owner=self)

    def _created(self, lt: LabelType) -> None:
        self.message.setText(f"created {lt.ref} ({lt.status})")
        self.new_name.clear()
        self.new_classes.clear()
        self.reload(select=lt.name)

    def publish(self) -> None:
        if self.current is None:
            return
        name = self.current.name

        def run(op: Any) -> tuple[LabelType, Changes]:
            return label_type_edits.publish(op.store, op.actor, name), Changes(label_types=True)

        self.context.change("Publish label type", run, on_result=lambda lt: self.message.setText(f"published {lt.ref}"),
                            on_error=self._failed, owner=self)

    def show_diff(self) -> None:
        if self.current is None:
            return
        name = self.current.name
        old, new = self.diff_from.currentData(), self.diff_to.currentData()
        self.context.query("Diff label type versions",
                           lambda op: label_type_edits.diff_versions(op.store, name, old, new),
                           on_result=self._show_diff, on_error=lambda exc: self.diff_text.setPlainText(error_text(exc)),
                           owner=self)

    def _show_diff(self, out: dict) -> None:
        lines = [f"{out['from']} → {out['to']}"]
        for change in out["changes"]:
            if "change" in change:
                lines.append(f"class {change['class']!r} {change['change']}")
            else:
                lines.append(f"{change['field']}: {change['from']!r} → {change['to']!r}")
        self.diff_text.setPlainText("\n".join(lines if out["changes"] else [*lines, "identical"]))

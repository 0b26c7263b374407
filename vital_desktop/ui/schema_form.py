"""A form generated from a label type's JSON Schema.

The class field → a `ClassChooser` (number keys, type-to-filter for long lists); another enum
→ a combo box; number/integer → spin box (optional ones behind a 'set' check box); boolean →
check box; string → line edit; an array of class names → checkable list (multi-label); the
shapes of a geometry label type (boxes, polygons, points) → a `ShapeModel` edited on the
canvas, listed in a `ShapeList`. `value()` returns a dict the label type's schema accepts; the
service validates it again.

The form fits a narrow side panel whatever the label type's titles: a row whose title and field
do not fit side by side puts the field under its title, and a title longer than the panel is
cut with "…" (whole in its tooltip), so the panel never scrolls sideways.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.services.label_types import LabelType
from vital_desktop.ui.class_chooser import ClassChooser, ShapeList, swatch
from vital_desktop.ui.shape_model import ClassSpec, ShapeModel, class_index_for_key, class_specs, geometry_kind, key_of
from vital_desktop.ui.widgets import ElidedLabel

UNSET = "—"


def _title(name: str, spec: dict) -> str:
    return spec.get("title") or name.replace("_", " ").capitalize()


def field_title(text: str, description: str = "") -> ElidedLabel:
    """A field's title: one line that gives way ("…") before the panel scrolls sideways; the
    tooltip has it whole, with the field's description."""
    label = ElidedLabel(text, minimum=40)
    # Preferred, not Ignored: the form lays titles out at their whole width while they fit
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
    if description:
        label.setToolTip(f"{text}\n{description}")
    return label


class OptionalNumber(QWidget):
    changed = Signal()

    def __init__(self, spec: dict, integer: bool, required: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.spin = QSpinBox() if integer else QDoubleSpinBox()
        low = spec.get("minimum", spec.get("exclusiveMinimum", -1e9))
        high = spec.get("maximum", spec.get("exclusiveMaximum", 1e9))
        if not integer:
            self.spin.setDecimals(3)  # type: ignore[union-attr]
            self.spin.setSingleStep(0.05 if high - low <= 1 else 1.0)  # type: ignore[union-attr, arg-type]
        self.spin.setRange(int(low) if integer else low, int(high) if integer else high)
        self.spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.enabled = QCheckBox("set")
        self.enabled.setChecked(required)
        self.enabled.setVisible(not required)
        self.enabled.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.spin.setEnabled(required)
        self.enabled.toggled.connect(self.spin.setEnabled)
        self.enabled.toggled.connect(lambda _on: self.changed.emit())
        self.spin.valueChanged.connect(lambda _v: self.changed.emit())
        layout.addWidget(self.spin, 1)
        layout.addWidget(self.enabled)

    def value(self) -> Any:
        return self.spin.value() if self.enabled.isChecked() else None

    def set_value(self, value: Any) -> None:
        self.enabled.setChecked(value is not None or not self.enabled.isVisible())
        if value is not None:
            self.spin.setValue(value)


class MultiChoice(QWidget):
    """Several classes at once (a multi-label field): number keys toggle them."""

    changed = Signal()

    def __init__(self, classes: list[ClassSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes = classes
        self.list = QListWidget()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for i, spec in enumerate(classes):
            entry = QListWidgetItem(swatch(spec.color), f"{key_of(classes, i) or ' '}   {spec.title}")
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(Qt.CheckState.Unchecked)
            self.list.addItem(entry)
        self.list.itemChanged.connect(lambda _e: self.changed.emit())
        self.list.setFixedHeight(min(max(len(classes), 1), 10) * max(self.list.sizeHintForRow(0), 18) + 6)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)

    def pick(self, index: int) -> bool:
        entry = self.list.item(index)
        if entry is None:
            return False
        checked = entry.checkState() == Qt.CheckState.Checked
        entry.setCheckState(Qt.CheckState.Unchecked if checked else Qt.CheckState.Checked)
        return True

    def value(self) -> list[str]:
        return [self.classes[i].name for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def set_value(self, value: Any) -> None:
        chosen = set(value or [])
        self.list.blockSignals(True)
        for i, spec in enumerate(self.classes):
            self.list.item(i).setCheckState(Qt.CheckState.Checked if spec.name in chosen else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)


class SchemaForm(QWidget):
    """Fields of one label type; `value()` is the label data.

    The class field (or a geometry label's shapes, or a multi-label list) is the field the
    number keys drive; `shape_model` is the canvas model of a geometry label type.
    """

    changed = Signal()

    def __init__(self, label_type: LabelType, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label_type = label_type
        schema = label_type.schema
        self.required = set(schema.get("required", []))
        self.titles: dict[str, str] = {}
        self.fields: dict[str, Any] = {}
        self.class_picker: ClassChooser | None = None
        self.multi_choice: MultiChoice | None = None
        self.shape_model: ShapeModel | None = None
        self.shape_list: ShapeList | None = None
        self.shape_kind = geometry_kind(label_type)  # boxes / polygons / points, or None
        self.title_labels: list[ElidedLabel] = []
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(8)
        # title and field side by side while they fit; else the field goes under its title
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name, spec in schema.get("properties", {}).items():
            widget = self._field(name, spec)
            self.fields[name] = widget
            self.titles[name] = _title(name, spec)
            title = field_title(self.titles[name] + ("" if name in self.required else " (optional)"),
                                str(spec.get("description") or ""))
            self.title_labels.append(title)
            if isinstance(widget, (ClassChooser, ShapeList, MultiChoice)):
                form.addRow(title)
                form.addRow(widget)
            else:
                form.addRow(title, widget)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        # A form layout gives a title its whole width even in a row narrower than it; no title may
        # be wider than the form, so a long one is cut ("…") instead of running past the panel.
        for title in self.title_labels:
            title.setMaximumWidth(max(60, event.size().width()))
        super().resizeEvent(event)

    @property
    def classes(self) -> list[ClassSpec]:
        """The classes the number keys pick from."""
        for holder in (self.class_picker, self.shape_model, self.multi_choice):
            if holder is not None:
                return holder.classes
        return []

    def _field(self, name: str, spec: dict) -> QWidget:
        kind = spec.get("type")
        required = name in self.required
        if name == self.label_type.class_field and ("enum" in spec or kind == "boolean"):
            values = [str(v) for v in spec["enum"]] if "enum" in spec else ["false", "true"]
            picker = ClassChooser(class_specs(self.label_type, values))
            picker.changed.connect(self.changed)
            self.class_picker = picker
            return picker
        if "enum" in spec:
            combo = QComboBox()
            combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            if not required:
                combo.addItem(UNSET)
            combo.addItems([str(v) for v in spec["enum"]])
            combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
            return combo
        if kind in ("number", "integer"):
            number = OptionalNumber(spec, kind == "integer", required)
            number.changed.connect(self.changed)
            return number
        if kind == "boolean":
            box = QCheckBox()
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            box.toggled.connect(lambda _on: self.changed.emit())
            return box
        if kind == "array" and name == self.shape_kind:
            labels = spec.get("items", {}).get("properties", {}).get("label", {}).get("enum", [])
            self.shape_model = ShapeModel(name, class_specs(self.label_type, [str(v) for v in labels]), self)
            self.shape_model.changed.connect(self.changed)
            self.shape_list = ShapeList(self.shape_model)
            return self.shape_list
        if kind == "array" and "enum" in spec.get("items", {}):
            multi = MultiChoice(class_specs(self.label_type, [str(v) for v in spec["items"]["enum"]]))
            multi.changed.connect(self.changed)
            self.multi_choice = multi
            return multi
        edit = QLineEdit()
        if "maxLength" in spec:
            edit.setMaxLength(int(spec["maxLength"]))
        edit.textChanged.connect(lambda _t: self.changed.emit())
        return edit

    def pick_class(self, index: int) -> bool:
        """Number keys: choose the index-th class (for the next shape of a geometry label)."""
        if self.class_picker is not None:
            return self.class_picker.pick(index)
        if self.shape_model is not None:
            return self.shape_model.pick_class(index)
        if self.multi_choice is not None:
            return self.multi_choice.pick(index)
        return False

    def class_for_key(self, key: str) -> int | None:
        """The class a typed key picks (its own shortcut, else its digit), if any."""
        return class_index_for_key(self.classes, key)

    def start_filter(self, text: str) -> bool:
        """Typed on the canvas: start filtering the classes (only when they outnumber the digit keys)."""
        chooser = self.class_picker or (self.shape_list.chooser if self.shape_list is not None else None)
        return chooser.start_filter(text) if chooser is not None else False

    def value(self) -> dict:
        data: dict[str, Any] = {}
        properties = self.label_type.schema.get("properties", {})
        for name, widget in self.fields.items():
            spec = properties[name]
            value: Any
            if isinstance(widget, ClassChooser):
                value = widget.value()
                if spec.get("type") == "boolean" and value is not None:
                    value = value == "true"
            elif isinstance(widget, ShapeList):
                value = widget.model.value()
            elif isinstance(widget, QComboBox):
                value = None if widget.currentText() == UNSET else widget.currentText()
            elif isinstance(widget, (OptionalNumber, MultiChoice)):
                value = widget.value()
            elif isinstance(widget, QCheckBox):
                value = widget.isChecked()
            else:
                value = widget.text().strip() or None
            if value is not None:
                data[name] = value
        return data

    def set_value(self, data: dict | None) -> None:
        data = data or {}
        for name, widget in self.fields.items():
            value = data.get(name)
            if isinstance(widget, ClassChooser):
                widget.set_value(("true" if value else "false") if isinstance(value, bool) else value)
            elif isinstance(widget, ShapeList):
                widget.model.set_shapes(value)
            elif isinstance(widget, QComboBox):
                widget.setCurrentText(str(value) if value is not None else (UNSET if widget.findText(UNSET) >= 0
                                                                             else widget.itemText(0)))
            elif isinstance(widget, (OptionalNumber, MultiChoice)):
                widget.set_value(value)
            elif isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            else:
                widget.setText("" if value is None else str(value))
                widget.setCursorPosition(0)  # a long value in a narrow field shows its start

    def missing_required(self) -> list[str]:
        """Titles (what the expert reads) of the required fields still empty, in form order."""
        data = self.value()
        return [self.titles[name] for name in self.fields if name in self.required and name not in data]

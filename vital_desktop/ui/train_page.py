"""TRAIN stage: the governed export summary (dual quality gates), JSONL preview and export,
local training of the image classifier with progress and cancel, the model card and lineage.

Every number on this page comes from `services.training`: the same gate function decides what
the export writes and what the trainer learns, so what the summary shows is what happens.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.services import deploy as deploy_service
from vital_desktop.services import generate as generate_service
from vital_desktop.services import registry, training
from vital_desktop.services import sheets as sheet_service
from vital_desktop.ui import theme
from vital_desktop.ui.charts import JobProgress, fill_model_picker, fill_table, heat_color, read_only_table
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.operations import OpEnv
from vital_desktop.ui.pages import Page
from vital_desktop.ui.permissions import gate, permitted, reason_label
from vital_desktop.ui.widgets import (
    Card,
    KeyValuePanel,
    compact_combo,
    error_text,
    muted_label,
    page_layout,
    primary_button,
    show_error,
    title_label,
)
from vital_desktop.ui.workers import Job

LINEAGE_LABELS_SHOWN = 200


def suggested_model_name(source: str) -> str:
    """A registry name from the training source's name ('Crystals' → 'crystals-classifier')."""
    stem = re.sub(r"[^a-z0-9._]+", "-", source.lower()).strip("-._")[:40].strip("-._")
    return f"{stem or 'site'}-classifier"


def _mono(widget: QWidget) -> None:
    from PySide6.QtGui import QFont

    font = QFont("DejaVu Sans Mono")
    font.setStyleHint(QFont.StyleHint.Monospace)
    font.setPointSizeF(9)
    widget.setFont(font)


class ModelCardView(QWidget):
    """A classifier's card: held-out accuracy, per-class precision/recall, confusion matrix heatmap."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.headline = QLabel()
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.headline.setWordWrap(True)
        layout.addWidget(self.headline)
        self.per_class = read_only_table(["class", "precision", "recall", "F1", "support"])
        layout.addWidget(title_label("Per class (held-out images)"))
        layout.addWidget(self.per_class, 1)
        layout.addWidget(title_label("Confusion matrix (rows: true class, columns: predicted)"))
        self.confusion = read_only_table([], stretch_last=False)
        self.confusion.verticalHeader().show()
        layout.addWidget(self.confusion, 1)

    def show_model(self, model: registry.ModelInfo | None) -> None:
        if model is None:
            self.headline.setText("No classifier selected.")
            fill_table(self.per_class, [])
            self.confusion.setRowCount(0)
            self.confusion.setColumnCount(0)
            return
        metrics = training.held_out_metrics(model.card)
        accuracy = metrics.get("accuracy")
        images = metrics.get("held_out_images") or (model.card.get("training") or {}).get("held_out_images")
        status = f"<b style='color:{theme.SUCCESS}'>active</b>" if model.active else model.status
        self.headline.setText(
            f"<span style='font-size:13pt; font-weight:600'>{model.ref}</span> &nbsp; {status}<br>"
            + (f"Held-out accuracy <b style='font-size:13pt'>{accuracy:.1%}</b>" if accuracy is not None
               else f"<span style='color:{theme.MUTED}'>no held-out metrics in this model's card</span>")
            + (f" on {images} images" if images else "")
            + f" &nbsp;·&nbsp; classes: {', '.join(model.classes)}"
        )
        per_class = metrics.get("per_class") or {}
        fill_table(self.per_class, [
            (name, f"{v.get('precision', 0):.2f}", f"{v.get('recall', 0):.2f}", f"{v.get('f1', 0):.2f}", v.get("support", 0))
            for name, v in per_class.items()
        ])
        matrix_info = metrics.get("confusion_matrix") or {}
        classes = list(matrix_info.get("classes") or [])
        matrix = matrix_info.get("matrix") or []
        self.confusion.setRowCount(len(classes))
        self.confusion.setColumnCount(len(classes))
        self.confusion.setHorizontalHeaderLabels(classes)
        self.confusion.setVerticalHeaderLabels(classes)
        for r, row in enumerate(matrix):
            total = sum(row) or 1
            for c, count in enumerate(row):
                cell = QTableWidgetItem(str(count))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setBackground(heat_color(count / total))
                if count / total > 0.55:
                    cell.setForeground(Qt.GlobalColor.white)
                cell.setToolTip(f"true {classes[r]}, predicted {classes[c]}: {count} of {sum(row)}")
                self.confusion.setItem(r, c, cell)
        self.confusion.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)


class LineageView(QTreeWidget):
    """Model → training sheet / sheet → template version → Q&A pairs → canonical label versions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["lineage", "detail"])
        self.setColumnWidth(0, 320)
        self.info: training.Lineage | None = None

    def show_lineage(self, info: training.Lineage | None) -> None:
        self.clear()
        self.info = info
        if info is None:
            return
        root = QTreeWidgetItem([f"model {info.name}@{info.version}",
                                f"held-out accuracy {info.held_out_accuracy:.1%}" if info.held_out_accuracy is not None
                                else ""])
        self.addTopLevelItem(root)
        if not info.sources:
            root.addChild(QTreeWidgetItem(["no lineage recorded",
                                           "this model was not trained on this site (imported or registered)"]))
        for src in info.sources:
            origin = (f"training sheet {src.training_sheet}" if src.training_sheet
                      else f"canonical labels of sheet {src.sheet}")
            source = QTreeWidgetItem([origin, f"trained by {src.trained_by} at {src.trained_at or '?'}"])
            root.addChild(source)
            source.addChild(QTreeWidgetItem(["sheet", src.sheet or "—"]))
            version = f"{src.template} {src.template_version}" if src.template else "— (labels used directly)"
            source.addChild(QTreeWidgetItem(["template version", version]))
            pairs = QTreeWidgetItem([f"Q&A pairs: {len(src.qa_pair_ids)}", ""])
            source.addChild(pairs)
            labels = QTreeWidgetItem([f"canonical label versions: {len(src.canonical_labels)}", ""])
            source.addChild(labels)
            for entry in src.canonical_labels[:LINEAGE_LABELS_SHOWN]:
                labels.addChild(QTreeWidgetItem([f"{entry.get('item_ref')}  →  {entry.get('class')}",
                                                 f"label {str(entry.get('id'))[:8]}… version {entry.get('version')}"]))
            if len(src.canonical_labels) > LINEAGE_LABELS_SHOWN:
                labels.addChild(QTreeWidgetItem([f"… {len(src.canonical_labels) - LINEAGE_LABELS_SHOWN} more",
                                                 "`vital lineage MODEL --full` lists all"]))
            config = src.training_config
            source.addChild(QTreeWidgetItem(["training config", ", ".join(
                f"{k}={config[k]}" for k in ("estimator", "val_fraction", "seed", "min_per_class") if k in config)]))
            source.setExpanded(True)
        root.setExpanded(True)


class TrainPage(Page):
    """Export summary and preview, training with progress and cancel, model card and lineage."""

    stage = "train"
    title = "TRAIN"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.summary: Any = None
        #: (source, validation fraction, seed) of the summary on screen or on its way
        self.summary_inputs: tuple | None = None
        self.last_result: training.TrainResult | None = None
        self.preview_job: Job | None = None
        self.train_job: Job | None = None
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self.refresh_summary)

        root, _header = page_layout(self, "Train",
                                   "Only pairs and labels that pass both gates — status labeled and the use "
                                   "allowed, not prohibited — are exported or learnt.")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter, 1)

        # --- left: data and export --------------------------------------------------------------
        data_card = Card("Training data")
        form = QFormLayout()
        self.source = compact_combo()
        self.source.setMinimumWidth(240)
        self.source.currentIndexChanged.connect(lambda _i: self.refresh_summary())
        form.addRow("Source", self.source)
        split_row = QHBoxLayout()
        self.split = QSlider(Qt.Orientation.Horizontal)
        self.split.setRange(0, 50)
        self.split.setSingleStep(5)
        self.split.setPageStep(5)
        self.split.setTickInterval(5)
        self.split.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.split.setValue(20)
        self.split_label = QLabel()
        self.split.valueChanged.connect(self._split_changed)
        split_row.addWidget(self.split, 1)
        split_row.addWidget(self.split_label)
        form.addRow("Train / validation", split_row)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(42)
        self.seed.valueChanged.connect(lambda _v: self._preview_timer.start())
        form.addRow("Split seed", self.seed)
        data_card.body.addLayout(form)
        data_card.body.addWidget(title_label("Export summary"))
        self.gates = KeyValuePanel()
        data_card.body.addWidget(self.gates)
        preview_row = QHBoxLayout()
        self.preview_title = title_label("Preview")
        preview_row.addWidget(self.preview_title)
        preview_row.addStretch(1)
        self.export_button = QPushButton("Export JSONL…")
        self.export_button.setToolTip("Write train.jsonl / val.jsonl and export_summary.json into a folder (Ctrl+E)")
        self.export_button.clicked.connect(self.export)
        preview_row.addWidget(self.export_button)
        data_card.body.addLayout(preview_row)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        _mono(self.preview)
        data_card.body.addWidget(self.preview, 1)
        self.export_result = muted_label()
        data_card.body.addWidget(self.export_result)
        splitter.addWidget(data_card)

        # --- right: train, model card, lineage -------------------------------------------------
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(theme.SPACING)
        train_card = Card("Train classifier (local, ONNX)")
        row = QHBoxLayout()
        row.addWidget(QLabel("Model name"))
        self.model_name = QLineEdit()
        self.model_name.setPlaceholderText("model name")
        self.model_name.setToolTip("Versions are numbered automatically: training again makes the next version. "
                                   "Named after the source until you type a name.")
        self.suggested_name = ""  # the name last suggested; one typed instead is kept when the source changes
        row.addWidget(self.model_name, 1)
        row.addWidget(QLabel("min. per class"))
        self.min_per_class = QSpinBox()
        self.min_per_class.setRange(1, 1000)
        self.min_per_class.setValue(training.DEFAULT_MIN_PER_CLASS)
        row.addWidget(self.min_per_class)
        train_card.body.addLayout(row)
        row = QHBoxLayout()
        self.activate_after = QCheckBox("Activate when trained")
        row.addWidget(self.activate_after)
        row.addStretch(1)
        self.train_button = primary_button("Train classifier")
        self.train_button.setToolTip("Train on the gated labels of the source (Ctrl+T); Esc cancels")
        self.train_button.clicked.connect(self.train)
        row.addWidget(self.train_button)
        train_card.body.addLayout(row)
        self.progress = JobProgress()
        train_card.body.addWidget(self.progress)
        self.train_result = QLabel()
        self.train_result.setWordWrap(True)
        self.train_result.setTextFormat(Qt.TextFormat.RichText)
        train_card.body.addWidget(self.train_result)
        self.train_reason = reason_label()
        train_card.body.addWidget(self.train_reason)
        self.can_train = gate(context.user, "train", [self.train_button], self.train_reason, "Training classifiers")
        right_layout.addWidget(train_card)

        model_card = Card()
        model_row = QHBoxLayout()
        model_row.addWidget(title_label("Model"))
        self.model_pick = compact_combo()
        self.model_pick.setMinimumWidth(260)
        self.model_pick.currentIndexChanged.connect(lambda _i: self.show_model())
        model_row.addWidget(self.model_pick)
        model_row.addStretch(1)
        model_card.body.addLayout(model_row)
        self.tabs = QTabWidget()
        self.card_view = ModelCardView()
        self.lineage_view = LineageView()
        self.tabs.addTab(self.card_view, "Model card")
        self.tabs.addTab(self.lineage_view, "Lineage")
        model_card.body.addWidget(self.tabs, 1)
        right_layout.addWidget(model_card, 1)
        splitter.addWidget(right)
        splitter.setSizes([560, 760])

        self._split_changed(self.split.value())
        self.reload_sources()
        self.reload_models()

    # --- data sources ---------------------------------------------------------------------------
    def reload_sources(self, select: str | None = None) -> None:
        current = select or self.source.currentData()
        self.context.query("training sources", lambda op: (generate_service.list_training_sheets(op.store),
                                                           sheet_service.list_sheets(op.store)),
                           key="train.sources", on_result=lambda value: self._show_sources(value, current))

    def _show_sources(self, value: tuple[list, list], current: Any) -> None:
        training_sheets, sheets = value
        self.source.blockSignals(True)
        self.source.clear()
        for ts in training_sheets:
            self.source.addItem(f"Training sheet: {ts.name}  ({ts.template_ref})", ("training_sheet", ts.name))
        for sheet in sheets:
            if sheet.image_column:
                self.source.addItem(f"Sheet (canonical labels): {sheet.name}", ("sheet", sheet.name))
        wanted = tuple(current) if current else None
        index = next((i for i in range(self.source.count()) if tuple(self.source.itemData(i)) == wanted), 0)
        self.source.setCurrentIndex(index)
        self.source.setToolTip(self.source.currentText())
        self.source.blockSignals(False)
        self.refresh_summary()

    def source_choice(self) -> tuple[str, str] | None:
        data = self.source.currentData()
        return tuple(data) if data else None  # type: ignore[return-value]

    def _split_changed(self, value: int) -> None:
        self.split_label.setText(f"{100 - value} / {value}")
        self._preview_timer.start()

    def refresh_summary(self) -> None:
        """Recompute the gate summary and the preview in the background (nothing is written)."""
        choice = self.source_choice()
        self.export_button.setEnabled(choice is not None and choice[0] == "training_sheet"
                                      and permitted(self.context.user, "export_data"))
        if choice is None:
            self.gates.set_rows([("", "No sheet with images and no training sheet yet: create one on DATA.")])
            self.preview.setPlainText("")
            return
        kind, name = choice
        if self.model_name.text().strip() in ("", self.suggested_name):
            self.suggested_name = suggested_model_name(name)
            self.model_name.setText(self.suggested_name)
        val_fraction, seed = self.split.value() / 100.0, self.seed.value()

        def work(op: OpEnv) -> Any:
            if kind == "training_sheet":
                summary, _ = training.export_training(op.store, actor=op.actor, training_sheet=name,
                                                      val_fraction=val_fraction, seed=seed, out_dir=None,
                                                      progress=op.progress)
                return summary
            return training.collect_training_set(op.store, sheet=name)

        inputs = (choice, val_fraction, seed)
        if inputs != self.summary_inputs:  # a reload of the same summary keeps it on screen until the new one
            self.gates.set_rows([("", "checking the gates…")])
        self.summary_inputs = inputs
        self.preview_job = self.context.query("Export summary", work, key="train.summary", on_result=self._show_summary,
                                              on_error=self._summary_failed)

    def _summary_failed(self, exc: BaseException) -> None:
        self.summary = None
        self.summary_inputs = None
        self.gates.set_rows([("Cannot summarise", error_text(exc))])
        self.preview.setPlainText("")

    def _show_summary(self, summary: Any) -> None:
        self.summary = summary
        reasons_color = theme.DANGER
        if isinstance(summary, training.ExportSummary):
            reasons = summary.prohibited_reasons
            rows = [
                ("Total Labeled", f"<b>{summary.total_labeled}</b> of {summary.total_pairs} Q&amp;A pairs"),
                ("Training Allowed", f"<b style='color:{theme.SUCCESS}'>{summary.use_allowed}</b>"),
                ("Training Prohibited", f"<b style='color:{reasons_color}'>{summary.use_prohibited}</b>"),
            ]
            rows += [("", f"&nbsp;&nbsp;– {reason}: {count}") for reason, count in reasons.items()]
            if summary.excluded_by_status:
                rows.append(("Not labeled", ", ".join(f"{k} {v}" for k, v in summary.excluded_by_status.items())))
            for split, counts in summary.class_counts.items():
                rows.append((f"{split} split", ", ".join(f"{c} {n}" for c, n in counts.items()) or "—"))
            self.gates.set_rows(rows, rich=True)
            self.preview_title.setText(f"JSONL preview (first {len(summary.preview)} lines)")
            self.preview.setPlainText("\n".join(summary.preview))
        else:
            from collections import Counter

            excluded = summary.excluded
            counts = Counter(e.cls for e in summary.examples)
            total = len(summary.examples) + sum(excluded.values())
            rows = [
                ("Total Labeled", f"<b>{total}</b> canonical labels ({summary.label_type})"),
                ("Training Allowed", f"<b style='color:{theme.SUCCESS}'>{len(summary.examples)}</b>"),
                ("Training Prohibited", f"<b style='color:{reasons_color}'>{sum(excluded.values())}</b>"),
            ]
            rows += [("", f"&nbsp;&nbsp;– {reason}: {count}") for reason, count in excluded.items()]
            rows.append(("Classes", ", ".join(f"{c} {n}" for c, n in sorted(counts.items())) or "—"))
            rows.append(("Validation", f"{self.split.value()} % held out per class (stratified) to measure accuracy"))
            self.gates.set_rows(rows, rich=True)
            self.preview_title.setText("Training examples (first 10; JSONL export is per training sheet)")
            self.preview.setPlainText("\n".join(
                f"{e.item_ref}  →  {e.cls}   (canonical label v{e.label_version})  {Path(e.image_path).name}"
                for e in summary.examples[:10]))

    # --- export ---------------------------------------------------------------------------------
    def export(self, folder: str | None = None) -> None:
        """Write the gated JSONL files into a folder chosen by the user."""
        choice = self.source_choice()
        if choice is None or choice[0] != "training_sheet":
            self.context.say("JSONL export works on a training sheet; pick one as the source.")
            return
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export training data to folder")
            if not folder:
                return
        name = choice[1]
        val_fraction, seed = self.split.value() / 100.0, self.seed.value()

        def done(summary: training.ExportSummary) -> None:
            self.export_result.setText("Wrote " + ", ".join(f"{Path(f.path).name} ({f.lines} lines)" for f in summary.files)
                                       + f" to {summary.out_dir}")
            self.context.say(f"Exported {summary.use_allowed} pairs to {summary.out_dir}")

        job = self.context.change(
            f"Exporting {name}",
            lambda op: training.export_training(op.store, actor=op.actor, training_sheet=name, val_fraction=val_fraction,
                                                seed=seed, out_dir=folder, progress=op.progress),
            on_result=done, on_error=lambda exc: show_error(self, "Export", exc), cancellable=True)
        self.progress.follow(job)

    # --- training -------------------------------------------------------------------------------
    def train(self) -> None:
        """Train a classifier from the source in the background; the card shows it when done."""
        if self.progress.running() or not self.can_train:
            return
        choice = self.source_choice()
        if choice is None:
            return
        kind, source = choice
        name = self.model_name.text().strip()
        arguments: dict[str, Any] = {"name": name, kind: source, "val_fraction": self.split.value() / 100.0,
                                     "seed": self.seed.value(), "min_per_class": self.min_per_class.value()}
        activate = self.activate_after.isChecked()

        def work(op: OpEnv) -> tuple[tuple[training.TrainResult, str], Changes]:
            result, changes = training.train_classifier(op.store, actor=op.actor, progress=op.progress, **arguments)
            refused = ""
            if activate:
                try:
                    _, activated = deploy_service.activate(op.store, actor=op.actor, model=result.model_id,
                                                           notes="activated from TRAIN")
                    changes = changes | activated
                except ValidationError as exc:  # less accurate than the serving one: trained, not activated
                    refused = exc.message
            return (result, refused), changes

        self.train_button.setEnabled(False)
        self.train_result.setText("")
        self.train_job = self.context.change(f"Training {name}", work, on_result=lambda done: self._trained(*done),
                                             on_error=self._train_failed, cancellable=True)
        self.progress.follow(self.train_job)

    def _trained(self, result: training.TrainResult, refused: str = "") -> None:
        self.last_result = result
        self.train_button.setEnabled(True)
        counts = ", ".join(f"{c} {n}" for c, n in result.class_counts.items())
        self.train_result.setText(
            f"Trained <b>{result.name}@{result.version}</b> on {result.images} images ({counts}) in "
            f"{result.duration_s:.1f} s — held-out accuracy <b>{result.held_out_accuracy:.1%}</b>"
            + (f"; {result.feedback_added} accepted feedback items reached training" if result.feedback_added else "")
            + (f"<br>{html.escape(refused)}" if refused else ""))
        self.context.say(f"Trained {result.name}@{result.version}: held-out accuracy {result.held_out_accuracy:.1%}")
        self.reload_models(select=result.model_id)

    def _train_failed(self, exc: BaseException) -> None:
        from vital_desktop.core.errors import Cancelled

        self.train_button.setEnabled(True)
        if isinstance(exc, Cancelled):
            self.train_result.setText("Training cancelled; nothing was registered.")
            return
        self.train_result.setText(f"<span style='color:{theme.DANGER}'>Training failed: {error_text(exc)}</span>")
        show_error(self, "Train classifier", exc)

    # --- model card and lineage -------------------------------------------------------------------
    def reload_models(self, select: str | None = None) -> None:
        self.context.query("classifiers", lambda op: registry.list_models(op.store, kind=registry.KIND_ONNX),
                           key="train.models", on_result=lambda models: self._show_models(models, select))

    def _show_models(self, models: list, select: str | None) -> None:
        fill_model_picker(self.model_pick, models, select)
        self.show_model()

    def show_model(self) -> None:
        model_id = self.model_pick.currentData()
        if model_id is None:
            self.card_view.show_model(None)
            self.lineage_view.show_lineage(None)
            return
        self.context.query("model card", lambda op: (registry.get_model(op.store, model_id),
                                                     training.lineage(op.store, model=model_id)),
                           key="train.card", on_result=self._show_card)

    def _show_card(self, value: tuple) -> None:
        model, lineage = value
        self.card_view.show_model(model)
        self.lineage_view.show_lineage(lineage)

    # --- page protocol --------------------------------------------------------------------------
    def on_changes(self, changes: Changes) -> None:
        if changes.models:
            self.reload_models()
        if changes.training_sheets or changes.sheets:
            self.reload_sources()
        elif changes.labels or changes.pairs:
            self._preview_timer.start()

    def activate(self, **arguments: Any) -> None:
        training_sheet = arguments.get("training_sheet")
        if training_sheet:
            self.reload_sources(select=("training_sheet", training_sheet))  # type: ignore[arg-type]
        model = arguments.get("model")
        if model:
            self.reload_models(select=model)

    def shutdown(self) -> None:
        self._preview_timer.stop()

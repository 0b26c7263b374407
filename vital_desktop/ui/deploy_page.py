"""DEPLOY stage: the model registry, activation and rollback, the activation history, and the
airgap deployment package (model + few-shot snapshot + signed manifest) for another site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QMessageBox, QPushButton, QSplitter, QWidget

from vital_desktop.core.changes import Changes
from vital_desktop.services import deploy as deploy_service
from vital_desktop.services import activation_check, llm_speed, registry, training
from vital_desktop.ui import theme
from vital_desktop.ui.charts import JobProgress, fill_table, read_only_table, selected_data
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.permissions import gate, reason_label
from vital_desktop.ui.widgets import Card, KeyValuePanel, muted_label, page_layout, primary_button, show_error

KIND_TITLES = {registry.KIND_ONNX: "image classifier (ONNX)", registry.KIND_GGUF: "language model (GGUF)"}


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class DeployPage(Page):
    """Which model serves predictions on this laptop, and how it got there."""

    stage = "deploy"
    title = "DEPLOY"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.models: list[registry.ModelInfo] = []
        self.speeds: dict = {}  # model id -> measured speeds (language models)
        root, _header = page_layout(self, "Deploy",
                                   "The active model of each kind serves predictions in-process (onnxruntime, "
                                   "llama.cpp); every activation is recorded.")

        splitter = QSplitter(Qt.Orientation.Vertical)
        root.addWidget(splitter, 1)
        registry_card = Card("Model registry")
        self.table = read_only_table(["model", "version", "kind", "status", "held-out accuracy", "origin", "created"])
        self.table.itemSelectionChanged.connect(self._selected)
        self.table.doubleClicked.connect(lambda _i: self.activate_selected())
        registry_card.body.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.activate_button = primary_button("Activate")
        self.activate_button.setToolTip("Make the selected version the active one of its kind (Ctrl+Shift+D)")
        self.activate_button.clicked.connect(lambda: self.activate_selected())
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.setToolTip("Re-activate the version that served before the current one")
        self.rollback_button.clicked.connect(lambda: self.rollback())
        self.package_button = QPushButton("Create airgap deployment package…")
        self.package_button.setToolTip("Model, few-shot example snapshot and a signed manifest, for a site "
                                       "without network")
        self.package_button.clicked.connect(lambda: self.create_package())
        for button in (self.activate_button, self.rollback_button, self.package_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        registry_card.body.addLayout(buttons)
        self.progress = JobProgress()
        registry_card.body.addWidget(self.progress)
        self.package_result = muted_label()
        registry_card.body.addWidget(self.package_result)
        self.reason = reason_label()
        registry_card.body.addWidget(self.reason)
        self.can_deploy = gate(context.user, "deploy", (self.activate_button, self.rollback_button,
                                                        self.package_button), self.reason, "Deploying models")
        #: answers the confirmations (tests set it; None asks the user)
        self.confirm_answer: bool | None = None
        self.last_question: tuple[str, str] | None = None  # the last confirmation asked (title, text)
        splitter.addWidget(registry_card)

        bottom = QSplitter(Qt.Orientation.Horizontal)
        detail_card = Card("Selected model")
        self.detail = KeyValuePanel()
        detail_card.body.addWidget(self.detail)
        detail_card.body.addStretch(1)
        bottom.addWidget(detail_card)
        history_card = Card("Deployment history")
        self.history = read_only_table(["activated", "model", "version", "status", "by", "deactivated", "notes"])
        history_card.body.addWidget(self.history, 1)
        bottom.addWidget(history_card)
        bottom.setSizes([520, 780])
        splitter.addWidget(bottom)
        splitter.setSizes([360, 380])
        self.reload()

    # --- data -----------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        current = select or self.selected_model_id()
        self.context.query("models", lambda op: (registry.list_models(op.store), deploy_service.history(op.store),
                                                 llm_speed.speeds(op.store)),
                           key="deploy.models", on_result=lambda value: self._show(value, current))

    def _show(self, value: tuple[list[registry.ModelInfo], list[dict], dict], current: str | None) -> None:
        self.models, history, self.speeds = value
        rows, colors = [], {}
        for r, m in enumerate(self.models):
            accuracy = training.held_out_metrics(m.card).get("accuracy")
            rows.append((m.name, m.version, KIND_TITLES.get(m.kind, m.kind), m.status,
                         f"{accuracy:.1%}" if accuracy is not None else "—", m.origin, (m.created_at or "")[:16]))
            if m.active:
                colors[(r, 3)] = theme.SUCCESS
        fill_table(self.table, rows, data=[m.id for m in self.models], colors=colors)
        ids = [m.id for m in self.models]
        if current in ids:
            self.table.selectRow(ids.index(current))
        elif self.models:
            active = next((i for i, m in enumerate(self.models) if m.active and m.kind == registry.KIND_ONNX), 0)
            self.table.selectRow(active)
        versions = {m.id: m.version for m in self.models}
        fill_table(self.history, [
            ((h["activated_at"] or "")[:19], h["model_name"], _version_of(h, versions), h["status"],
             h["activated_by"], (h["deactivated_at"] or "")[:19], h["notes"]) for h in history
        ], colors={(r, 3): theme.SUCCESS for r, h in enumerate(history) if h["status"] == "active"})
        self._selected()

    def selected_model_id(self) -> str | None:
        return selected_data(self.table)

    def selected_model(self) -> registry.ModelInfo | None:
        model_id = self.selected_model_id()
        return next((m for m in self.models if m.id == model_id), None)

    def _selected(self) -> None:
        model = self.selected_model()
        if model is None:
            self.detail.set_rows([("", "Select a model.")])
            return
        self.activate_button.setText("Active" if model.active else "Activate")
        if self.can_deploy:
            self.activate_button.setEnabled(not model.active)
            self.package_button.setEnabled(model.kind == registry.KIND_ONNX)
        metrics = training.held_out_metrics(model.card)
        rows = [
            ("Model", f"{model.ref} — {KIND_TITLES.get(model.kind, model.kind)}"),
            ("Status", model.status),
            ("Held-out accuracy", f"{metrics['accuracy']:.1%}" if metrics.get("accuracy") is not None else "—"),
            ("Classes", ", ".join(model.classes) or "—"),
            ("File", model.path),
            ("SHA-256", model.file_sha256),
            ("Size", _size(model.size_bytes)),
            ("Origin", f"{model.origin} — {model.card.get('origin', '')}".rstrip(" —")),
            ("Registered", f"{model.created_at} by {model.created_by}"),
        ]
        if model.kind == registry.KIND_GGUF:  # a language model: its chat template, and its speed on this machine
            measured = self.speeds.get(model.id, [])
            rows.insert(4, ("Speed here", "; ".join(v.text() for v in measured)
                            or f"not measured yet (measured on first use, or vital model measure {model.ref})"))
            template = model.card.get("chat_template_sha256")
            rows.insert(5, ("Chat template", f"declared in the file (sha256 {template[:12]}…)" if template
                            else "read from the file when loaded"))
        self.detail.set_rows(rows)

    # --- actions ----------------------------------------------------------------------------------
    def confirm(self, title: str, text: str) -> bool:
        """Ask before changing what serves predictions (tests answer through `confirm_answer`)."""
        self.last_question = (title, text)
        if self.confirm_answer is not None:
            return self.confirm_answer
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def activate_selected(self) -> None:
        """Activate the selected version (the previous active one of its kind is deactivated), after asking."""
        model = self.selected_model()
        if model is None or model.active or not self.can_deploy:
            return
        current = next((m for m in self.models if m.active and m.kind == model.kind), None)
        if current is None or model.kind != registry.KIND_ONNX:
            self._confirm_activation(model, current, None)
            return
        # A classifier replacing the serving one is first compared with it on held-out labels
        # (off the GUI thread); the confirmation shows the result.
        model_id = model.id
        job = self.context.query(
            f"Comparing {model.ref} with {current.ref}",
            lambda op: activation_check.compare_with_active(op.store, model=model_id, progress=op.progress),
            on_result=lambda check: self._confirm_activation(model, current, check),
            on_error=lambda exc: show_error(self, "Activate", exc), owner=self, visible=True)
        self.progress.follow(job)

    def _confirm_activation(self, model: registry.ModelInfo, current: registry.ModelInfo | None,
                            check: activation_check.ActivationCheck | None) -> None:
        worse = check is not None and check.worse
        text = f"Activate {model.ref}? Every prediction on this laptop will use it."
        if current is not None:
            text += f" It replaces {current.ref}, which serves predictions now."
        if check is not None:
            text += f"\n\n{check.sentence()}"
        if worse:
            text += "\n\nActivate it anyway?"
        if not self.confirm("Activate a less accurate model?" if worse else "Activate model", text):
            self.table.setFocus()
            return
        model_id = model.id
        self.context.change(
            f"Activating {model.ref}",
            # the user has seen the comparison: it is not run again on the writer thread
            lambda op: deploy_service.activate(op.store, actor=op.actor, model=model_id, notes="activated from DEPLOY",
                                               even_if_worse=check is not None),
            on_result=lambda info: self.context.say(f"{info.ref} is now active"),
            on_error=lambda exc: show_error(self, "Activate", exc))
        self.table.setFocus()

    def rollback(self) -> None:
        """Re-activate the version that served before the current one of the selected model's name, after asking."""
        if not self.can_deploy:
            return
        model = self.selected_model()
        name = model.name if model is not None else None
        if not self.confirm("Roll back", f"Roll back {name or 'the active model'} to the version that served "
                            "before the current one?"):
            return
        self.context.change(
            "Rolling back",
            lambda op: deploy_service.rollback(op.store, actor=op.actor, name=name),
            on_result=lambda info: self.context.say(f"Rolled back: {info.ref} is active again"),
            on_error=lambda exc: show_error(self, "Roll back", exc))
        self.table.setFocus()

    def create_package(self, folder: str | None = None) -> None:
        """Write the airgap deployment package of the selected model into a chosen folder."""
        model = self.selected_model()
        if model is None:
            return
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, f"Airgap deployment package of {model.ref}: choose a folder")
            if not folder:
                return
        model_id = model.id

        def done(result: deploy_service.PackageResult) -> None:
            self.package_result.setText(
                f"Wrote {result.path}: {len(result.files)} files, {result.few_shot_examples} few-shot examples"
                + (f" ({sum(result.few_shot_excluded.values())} kept home by usage constraints)"
                   if result.few_shot_excluded else "")
                + (f"; manifest signed by {result.signed_by}" if result.signed_by else ""))
            self.context.say(f"Deployment package written to {Path(result.path).name}")

        job = self.context.change(
            f"Packaging {model.ref}",
            lambda op: deploy_service.build_package(op.store, actor=op.actor, model=model_id, out_dir=folder),
            on_result=done, on_error=lambda exc: show_error(self, "Deployment package", exc))
        self.progress.follow(job)

    # --- page protocol --------------------------------------------------------------------------
    def on_changes(self, changes: Changes) -> None:
        if changes.models or changes.bundles:
            self.reload()

    def activate(self, **arguments: Any) -> None:
        if arguments.get("model"):
            self.reload(select=arguments["model"])


def _version_of(entry: dict, versions: dict[str, int]) -> str:
    """The deployed version of a history entry (the entry's own field, else the registry's)."""
    version = entry.get("model_version", versions.get(entry.get("model_id", ""), ""))
    return f"v{version}" if version not in ("", None) else "—"

"""The main window: header with the pipeline breadcrumb, one page per stage, the job bar.

A shell only: it builds pages lazily (first visit), routes actions from `ui.actions` to the
active page, and remembers its geometry and last stage in QSettings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.ui import collector, page_registry
from vital_desktop.ui.actions import ACTIONS, STAGES, ActionSpec
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.widgets import ElidedLabel, show_error
from vital_desktop.ui.workers import Job

log = logging.getLogger(__name__)

#: pages beside the pipeline stages: key -> (button text, shortcut shown in the tooltip)
TOOL_PAGES: dict[str, tuple[str, str]] = {"taxonomy": ("Taxonomy", "engineers and admins"),
                                          "calibration": ("Calibration", "Ctrl+8"), "bundles": ("Bundles", "Ctrl+9"),
                                          "users": ("Users", "Ctrl+0")}


def app_settings() -> QSettings:
    """Window state only (labelme's rule): everything else lives in the store."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "VITAL", "vital-desktop")


class Breadcrumb(QWidget):
    """DATA → GENERATE → … → IMPROVE; the current stage is highlighted."""

    def __init__(self, on_select: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QPushButton] = {}
        for i, (key, title) in enumerate(STAGES):
            if i:
                arrow = QLabel("→")
                arrow.setObjectName("crumbArrow")
                layout.addWidget(arrow)
            button = QPushButton(title)
            button.setProperty("stage", True)
            button.setCheckable(True)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setToolTip(f"{title} (Ctrl+{i + 1})")
            button.clicked.connect(lambda _=False, k=key: on_select(k))
            self.group.addButton(button)
            self.buttons[key] = button
            layout.addWidget(button)

    def set_current(self, stage: str) -> None:
        button = self.buttons.get(stage)
        if button is not None:
            button.setChecked(True)
        elif stage in TOOL_PAGES:  # Calibration, Bundles: no pipeline stage is current
            self.group.setExclusive(False)
            for other in self.buttons.values():
                other.setChecked(False)
            self.group.setExclusive(True)
        else:  # e.g. the labeling tool: LABEL is the stage it belongs to
            self.buttons["label"].setChecked(True)


class JobBar(QWidget):
    """Running jobs in the status bar: title, progress, cancel. Polled, not signalled per tick."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.layout_ = QHBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.rows: dict[int, tuple[ElidedLabel, QProgressBar, QPushButton]] = {}
        self.timer = QTimer(self)
        self.timer.setInterval(150)
        self.timer.timeout.connect(self.poll)
        context.jobs.job_started.connect(self._started)
        context.jobs.job_ended.connect(self._ended)

    def _started(self, job: Job) -> None:
        label = ElidedLabel(job.title, minimum=80)
        label.setMaximumWidth(280)
        bar = QProgressBar()
        bar.setFixedWidth(160)
        bar.setRange(0, 0)
        cancel = QPushButton("Cancel")
        cancel.setEnabled(job.cancellable)
        cancel.clicked.connect(job.cancel)
        for widget in (label, bar, cancel):
            self.layout_.addWidget(widget)
        self.rows[id(job)] = (label, bar, cancel)
        self.timer.start()

    def _ended(self, job: Job) -> None:
        for widget in self.rows.pop(id(job), ()):
            widget.deleteLater()
        if not self.rows:
            self.timer.stop()

    def poll(self) -> None:
        for job in self.context.jobs.visible_jobs():
            row = self.rows.get(id(job))
            if row is None:
                continue
            label, bar, _ = row
            snap = job.snapshot()
            if snap.total:
                bar.setRange(0, snap.total)
                bar.setValue(min(snap.done, snap.total))
            label.setText(f"{job.title}: {snap.message}" if snap.message else job.title)


class ShortcutsDialog(QDialog):
    """Every action and its keys, generated from `ui.actions`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(ACTIONS), 3)
        table.setHorizontalHeaderLabels(["Where", "Action", "Keys"])
        table.verticalHeader().hide()
        for row, spec in enumerate(ACTIONS):
            where = {"window": "Everywhere", "canonical": "Canonical Labeling Tool",
                     "label": "LABEL review"}.get(spec.scope, spec.scope)
            keys = ", ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in spec.shortcuts)
            for col, text in enumerate((where, spec.text, keys or "—")):
                table.setItem(row, col, QTableWidgetItem(text))
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        self.resize(560, 620)


class MainWindow(QMainWindow):
    """The shell. Pages are created on first visit by the factories in `page_factories`."""

    def __init__(self, context: AppContext, *, settings: QSettings | None = None,
                 freeze_long_lived: bool = False) -> None:
        super().__init__()
        self.context = context
        #: the app (not tests) keeps the window's and each new page's objects out of the cyclic
        #: collector, whose full passes held the GIL for 300 ms and more (`ui.collector`)
        self.freeze_long_lived = freeze_long_lived
        self.settings = settings or app_settings()
        self.setWindowTitle("VITAL Desktop")
        self.pages: dict[str, Page] = {}
        self.holders: dict[str, QScrollArea] = {}
        self.current_stage = ""
        self.previous_stage = "data"
        self.qactions: dict[str, QAction] = {}
        #: answers the quit confirmation (tests set it; None asks the user)
        self.quit_answer: bool | None = None

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        header = QFrame()
        header.setObjectName("header")
        header_layout = QHBoxLayout(header)
        header_layout.setContentsMargins(16, 8, 16, 8)
        title = QLabel("VITAL")
        title.setObjectName("appTitle")
        header_layout.addWidget(title)
        header_layout.addSpacing(18)
        self.breadcrumb = Breadcrumb(self.go)
        header_layout.addWidget(self.breadcrumb)
        header_layout.addStretch(1)
        # tools beside the pipeline (ARCHITECTURE.md §7); Bundles only for administrators
        self.tool_buttons: dict[str, QPushButton] = {}
        for tool, (text, keys) in TOOL_PAGES.items():
            if not page_registry.visible(context, tool):
                continue
            tool_button = QPushButton(text)
            tool_button.setToolTip(f"Open {text} ({keys})")
            tool_button.clicked.connect(lambda _=False, t=tool: self.go(t))
            header_layout.addWidget(tool_button)
            self.tool_buttons[tool] = tool_button
        self.canonical_button = QPushButton("Canonical Labels")
        self.canonical_button.setProperty("primary", True)
        self.canonical_button.setToolTip("Open the Canonical Labeling Tool (Ctrl+L)")
        self.canonical_button.clicked.connect(lambda: self.go("canonical"))
        header_layout.addWidget(self.canonical_button)
        layout.addWidget(header)
        self.stack = QStackedWidget()
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.user_label = ElidedLabel(f"  {context.user.display_name or context.user.username} "
                                      f"({context.user.role.value}) — {context.site_path}  ", minimum=120)
        self.user_label.setMaximumWidth(420)
        self.user_label.setMinimumWidth(200)  # in the status bar an Ignored size policy would get no room at all
        self.user_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.user_label.setProperty("muted", True)
        self.job_bar = JobBar(context)
        self.statusBar().addPermanentWidget(self.job_bar)
        self.statusBar().addPermanentWidget(self.user_label)
        context.status_message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        context.navigate_requested.connect(lambda stage, args: self.go(stage, **args))
        context.jobs.failed.connect(lambda title, exc: show_error(self, title, exc))

        self._build_menus()
        self._restore_window()

    # --- pages ----------------------------------------------------------------------------------
    def page_factories(self) -> dict[str, Callable[[], Page]]:
        return page_registry.factories(self.context)

    def page(self, stage: str) -> Page:
        """The page of a stage, built on first use (keeps start-up fast)."""
        if stage not in self.pages:
            factory = self.page_factories().get(stage)
            if factory is None:
                raise LookupError(page_registry.hidden_reason(stage))
            page = factory()
            self.pages[stage] = page
            # A page wider or taller than the window scrolls inside it instead of growing the
            # window past a laptop screen (the window's minimum no longer depends on any page).
            holder = QScrollArea()
            holder.setWidgetResizable(True)
            holder.setFrameShape(QFrame.Shape.NoFrame)
            holder.setWidget(page)
            self.holders[stage] = holder
            self.stack.addWidget(holder)
            if self.freeze_long_lived:
                collector.freeze_long_lived()
        return self.pages[stage]

    def go(self, stage: str, **arguments: Any) -> None:
        """Show a stage (or the labeling tool) and pass it deep-link arguments."""
        if stage == "back":
            stage = self.previous_stage if self.previous_stage != "canonical" else "data"
        if not page_registry.visible(self.context, stage):
            self.statusBar().showMessage(page_registry.hidden_reason(stage), 6000)
            return
        try:
            page = self.page(stage)
        except Exception as exc:  # noqa: BLE001 - a page that cannot open says why
            show_error(self, f"Cannot open {stage}", exc)
            return
        if stage != self.current_stage and self.current_stage:
            self.previous_stage = self.current_stage
        self.current_stage = stage
        self.stack.setCurrentWidget(self.holders[stage])
        self.breadcrumb.set_current(stage)
        self.canonical_button.setEnabled(stage != "canonical")
        for tool, tool_button in self.tool_buttons.items():
            tool_button.setEnabled(stage != tool)
        self._update_actions()
        page.activate(**{k: v for k, v in arguments.items() if v is not None})

    def current_page(self) -> Page | None:
        """The page on screen (inside its scroll holder)."""
        return self.pages.get(self.current_stage)

    def close_tool(self) -> None:
        self.go(self.previous_stage if self.previous_stage != "canonical" else "data")

    # --- actions ------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        menus: dict[str, Any] = {}
        for spec in ACTIONS:
            menu = menus.get(spec.menu)
            if menu is None:
                menu = menus[spec.menu] = self.menuBar().addMenu(spec.menu)
            action = QAction(spec.text, self)
            action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _=False, s=spec: self.dispatch(s))
            menu.addAction(action)
            self.addAction(action)  # shortcuts work with the menu bar hidden too
            self.qactions[spec.name] = action
        self._update_actions()

    def _update_actions(self) -> None:
        for spec in ACTIONS:
            action = self.qactions.get(spec.name)
            if action is not None:
                action.setEnabled(spec.scope == "window" or spec.scope == self.current_stage)

    def dispatch(self, spec: ActionSpec) -> None:
        """Run an action's handler on the shell or on the active page."""
        target: Any = self if spec.scope == "window" else self.pages.get(spec.scope)
        handler = getattr(target, spec.handler, None)
        if handler is None:
            self.statusBar().showMessage(f"{spec.text}: not available here", 3000)
            return
        try:
            handler(spec.argument) if spec.argument is not None else handler()
        except Exception as exc:
            log.exception("action %s failed", spec.name)
            show_error(self, spec.text, exc)

    def create_sheet(self) -> None:
        self.go("data")
        self.page("data").open_wizard()  # type: ignore[attr-defined]

    def refresh(self) -> None:
        from vital_desktop.core.changes import Changes

        self.context.announce(Changes(sheets=True, labels=True, templates=True, training_sheets=True, pairs=True,
                                      models=True, predictions=True, feedback=True))

    def show_shortcuts(self) -> None:
        dialog = ShortcutsDialog(self)
        self.shortcuts_dialog = dialog
        dialog.open()

    def save_diagnostics(self) -> None:
        """Help → Save Diagnostics: the redacted support archive (log, versions, statistics)."""
        from PySide6.QtWidgets import QFileDialog

        from vital_desktop.services import support

        path, _ = QFileDialog.getSaveFileName(self, "Save diagnostics", "vital-support.zip", "Zip archive (*.zip)")
        if not path:
            return
        from vital_desktop.core.changes import Changes

        # It writes an audit row: a change on the writer thread (it changes nothing a page shows).
        self.context.change(
            "Saving diagnostics",
            lambda op: (support.write_support_bundle(op.store, actor=op.actor, out=path), Changes()),
            on_result=lambda bundle: self.context.say(
                f"Diagnostics saved to {bundle.path} ({bundle.log_entries} log entries, no label content)"),
        )

    def show_about(self) -> None:
        QMessageBox.about(self, "VITAL Desktop", "VITAL Desktop — the offline spoke of the VITAL platform.\n"
                          "Data → Generate → Label → Train → Deploy → Monitor → Improve, on this laptop.")

    # --- window state ---------------------------------------------------------------------------
    def _restore_window(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(QSize(1360, 860))
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)

    def last_stage(self) -> str:
        value = self.settings.value("window/stage", "data")
        return value if value in dict(STAGES) else "data"

    def confirm_quit(self) -> bool:
        """Ask before quitting while jobs run (their work is cancelled cleanly; a generation can be resumed)."""
        running = [job.title for job in self.context.jobs.visible_jobs() if job.running]
        if not running:
            return True
        if self.quit_answer is not None:
            return self.quit_answer
        listed = "\n".join(f"• {title}" for title in running[:6])
        answer = QMessageBox.question(
            self, "Quit VITAL Desktop", f"{len(running)} job(s) are still running:\n{listed}\n\nCancel them and quit? "
            "A cancelled generation keeps its pairs and can be resumed; other jobs write nothing.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.confirm_quit():
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/stage", self.current_stage if self.current_stage in dict(STAGES) else "data")
        self.settings.sync()
        for page in self.pages.values():
            closer = getattr(page, "shutdown", None)
            if closer is not None:
                closer()
        # cancel, then wait: never terminate a thread (a write in flight finishes and commits)
        self.context.jobs.cancel_all()
        self.context.jobs.wait(30_000)
        super().closeEvent(event)

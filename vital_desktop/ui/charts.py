"""Plots and small shared widgets of the lifecycle pages (TRAIN … IMPROVE, Calibration, Bundles).

Plots are pyqtgraph (STYLE.md: a well-kept plotting library, not hand painting): a line chart
of values over days, a bar chart of counts, and a spectrum with a logarithmic y axis. The
`JobProgress` strip shows one background job on the page that started it (progress bar, message,
Cancel with Esc), polling the job's `Progress` snapshot like the status bar does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from vital_desktop.ui import theme
from vital_desktop.ui.workers import Job

pg.setConfigOptions(antialias=True, background=theme.SURFACE, foreground=theme.TEXT)


def _style(widget: pg.PlotWidget, title: str, left: str, bottom: str, height: int = 170) -> None:
    widget.setMinimumHeight(height)
    widget.setMenuEnabled(False)
    widget.setTitle(title, color=theme.TEXT, size="10pt")
    widget.setLabel("left", left)
    if bottom:
        widget.setLabel("bottom", bottom)
    widget.showGrid(x=False, y=True, alpha=0.25)
    widget.getPlotItem().getViewBox().setMouseEnabled(x=False, y=False)
    widget.getPlotItem().hideButtons()
    for axis in ("left", "bottom"):
        widget.getAxis(axis).enableAutoSIPrefix(False)


class LineChart(pg.PlotWidget):
    """Values over categorical x positions (days), with the x labels shown as ticks.

    The curve and the reference line are made once and given new data (`setData`), and a call
    with the data already shown does nothing: a page reloading every few seconds while a job
    runs costs the GUI thread no repaint unless a value moved."""

    def __init__(self, title: str, left: str, bottom: str = "", *, y_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        _style(self, title, left, bottom)
        self.y_range = y_range
        self.values: list[float] = []
        self.curve = self.plot([], [], pen=pg.mkPen(theme.ACCENT, width=2), symbol="o", symbolSize=7,
                               symbolBrush=theme.ACCENT, symbolPen=None)
        self.reference = pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen(theme.WARNING, width=1,
                                                                        style=Qt.PenStyle.DashLine),
                                         label="", labelOpts={"position": 0.05, "color": theme.WARNING})
        self.reference.setVisible(False)
        self.addItem(self.reference)
        self._shown: tuple | None = None

    def show_series(self, labels: Sequence[str], values: Sequence[float], *, reference: float | None = None,
                    reference_name: str = "") -> None:
        """Plot `values` at positions 0..n-1 labelled `labels`; a dashed line marks `reference`."""
        shown = (tuple(labels), tuple(values), reference, reference_name)
        if shown == self._shown:
            return
        self._shown = shown
        self.values = list(values)
        self.curve.setData(list(range(len(values))), list(values))
        self.reference.setVisible(reference is not None)
        if reference is not None:
            self.reference.setValue(reference)
            self.reference.label.setFormat(reference_name)
        step = max(1, len(labels) // 8)
        self.getAxis("bottom").setTicks([[(i, labels[i][5:] if len(labels[i]) == 10 else labels[i])
                                          for i in range(0, len(labels), step)]])
        if self.y_range:
            self.setYRange(*self.y_range, padding=0.05)
        self.setXRange(-0.5, max(len(values) - 0.5, 0.5), padding=0)


class BarChart(pg.PlotWidget):
    """Counts per category, with the category names as x ticks (one bar item, given new data;
    the data already shown is not drawn again)."""

    def __init__(self, title: str, left: str = "count", bottom: str = "", *, color: str = theme.ACCENT) -> None:
        super().__init__()
        _style(self, title, left, bottom)
        self.color = color
        self.values: list[float] = []
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=pg.mkBrush(color), pen=pg.mkPen(None))
        self.addItem(self.bars)
        self._shown: tuple | None = None

    def show_bars(self, labels: Sequence[str], values: Sequence[float], *, colors: Sequence[str] | None = None) -> None:
        shown = (tuple(labels), tuple(values), tuple(colors) if colors else None)
        if shown == self._shown:
            return
        self._shown = shown
        self.values = list(values)
        if colors:
            self.bars.setOpts(x=list(range(len(values))), height=list(values), brush=None,
                              brushes=[pg.mkBrush(c) for c in colors])
        else:
            self.bars.setOpts(x=list(range(len(values))), height=list(values), brushes=None,
                              brush=pg.mkBrush(self.color))
        self.getAxis("bottom").setTicks([[(i, short_label(str(label), len(labels))) for i, label in enumerate(labels)]])
        self.setXRange(-0.6, max(len(values) - 0.4, 0.6), padding=0)
        self.setYRange(0, max(values, default=1) * 1.1 or 1, padding=0)


def short_label(label: str, count: int) -> str:
    """Tick labels must fit under their bar: long class names are cut (the tooltip has them whole)."""
    room = max(4, 60 // max(count, 1))
    return label if len(label) <= room else label[: room - 1] + "…"


class SpectrumPlot(pg.PlotWidget):
    """A pulse-height spectrum: counts per decay per bin against energy, log y (as gamma spectra are read).

    One step curve, given new data; showing the spectrum already shown does nothing."""

    def __init__(self) -> None:
        super().__init__()
        _style(self, "Pulse-height spectrum (per decay, log scale)", "counts per decay per bin",
               "energy deposited (keV)", height=220)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLogMode(x=False, y=True)
        self.points = 0
        # A step outline is horizontal and vertical segments: antialiasing adds nothing to see and
        # made each repaint of a 1,024-bin filled spectrum ~5x slower (33-44 ms against 7 ms here).
        self.setAntialiasing(False)
        self.curve = pg.PlotDataItem(stepMode="center", brush=pg.mkBrush(theme.ACCENT_SOFT),
                                     pen=pg.mkPen(theme.ACCENT, width=1.5), antialias=False)
        self.empty_text = pg.TextItem("No spectrum yet: run a simulation or pick a past run.", color=theme.MUTED,
                                      anchor=(0.5, 0.5))
        self._shown: object = None
        self._empty: bool | None = None
        self._show_empty(True)

    def _show_empty(self, empty: bool) -> None:
        """An empty plot shows a sentence, not axes with meaningless numbers."""
        if empty == self._empty:
            return
        self._empty = empty
        for axis in ("left", "bottom"):
            self.getPlotItem().showAxis(axis, not empty)
        self.showGrid(x=not empty, y=not empty, alpha=0.2)
        if empty:
            self.removeItem(self.curve)
            self.setLogMode(x=False, y=False)
            self.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            self.addItem(self.empty_text)
            self.empty_text.setPos(0.5, 0.5)
        else:
            self.removeItem(self.empty_text)
            self.setLogMode(x=False, y=True)
            self.addItem(self.curve)

    def show_spectrum(self, spectrum: dict[str, Any] | None) -> None:
        values = (spectrum or {}).get("broadened") or (spectrum or {}).get("raw") or []
        edges_kev = (spectrum or {}).get("edges_kev") or []
        shown = (tuple(edges_kev), tuple(values))
        if shown == self._shown:
            return
        self._shown = shown
        positive = [v for v in values if v and v > 0]
        if not edges_kev or not positive or len(edges_kev) != len(values) + 1:
            self.points = 0
            self.curve.setData([], [])
            self._show_empty(True)
            return
        self._show_empty(False)
        edges = [float(e) for e in edges_kev]
        floor = min(positive) / 10.0
        # log axis: empty bins sit at a floor a decade below the smallest count instead of -inf
        heights = [max(float(v), floor) for v in values]
        self.curve.setFillLevel(math.log10(floor))
        self.curve.setData(edges, heights)
        self.points = len(heights)
        self.autoRange()


def heat_color(fraction: float) -> QColor:
    """White to the accent colour, for confusion-matrix cells."""
    fraction = min(max(fraction, 0.0), 1.0)
    start, end = QColor(theme.SURFACE), QColor(theme.ACCENT)
    return QColor(int(start.red() + (end.red() - start.red()) * fraction),
                  int(start.green() + (end.green() - start.green()) * fraction),
                  int(start.blue() + (end.blue() - start.blue()) * fraction))


def read_only_table(headers: Sequence[str], *, stretch_last: bool = True) -> QTableWidget:
    """A sortable-free, read-only table with row selection (the lifecycle pages' lists)."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(stretch_last)
    return table


def fill_table(table: QTableWidget, rows: Iterable[Sequence[Any]], *, data: Sequence[Any] | None = None,
               colors: dict[tuple[int, int], str] | None = None) -> None:
    """Replace the rows; `data[i]` is stored on row i's first cell (UserRole); `colors` tint text.

    Rows already shown are not rebuilt: pages reload their tables on every change a job reports,
    and rebuilding identical cells (and re-measuring their columns) was GUI-thread work for nothing."""
    rows = [list(r) for r in rows]
    content = (rows, list(data) if data is not None else None, dict(colors) if colors else None)
    if getattr(table, "_vital_content", None) == content:
        return
    table._vital_content = content  # type: ignore[attr-defined]
    # With ResizeToContents columns every setItem re-measured its whole column (about 1 ms per cell,
    # quadratic in the rows): fill with fixed sections, then measure once.
    header = table.horizontalHeader()
    modes = [header.sectionResizeMode(c) for c in range(table.columnCount())]
    for c in range(table.columnCount()):
        header.setSectionResizeMode(c, QHeaderView.ResizeMode.Fixed)
    table.setUpdatesEnabled(False)
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            cell = QTableWidgetItem("" if value is None else str(value))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if colors and (r, c) in colors:
                cell.setForeground(QBrush(QColor(colors[(r, c)])))
            if c == 0 and data is not None:
                cell.setData(Qt.ItemDataRole.UserRole, data[r])
            table.setItem(r, c, cell)
    for c, mode in enumerate(modes):
        header.setSectionResizeMode(c, mode)
    table.setUpdatesEnabled(True)


def fill_model_picker(combo: Any, models: Sequence[Any], select: str | None = None) -> None:
    """List classifier versions (name, newest first; the active one marked) without emitting
    change signals, keeping `select`, else the current choice, else the active model."""
    current = select or combo.currentData()
    if current is None:
        active = next((m for m in models if m.active), None)
        current = active.id if active else (models[-1].id if models else None)
    combo.blockSignals(True)
    combo.clear()
    for model in sorted(models, key=lambda m: (m.name, -m.version)):
        combo.addItem(model.ref + ("  (active)" if model.active else ""), model.id)
    combo.setCurrentIndex(max(combo.findData(current), 0))
    combo.blockSignals(False)


def selected_data(table: QTableWidget) -> Any:
    """The UserRole data of the selected row's first cell, or None."""
    rows = table.selectionModel().selectedRows() if table.selectionModel() else []
    if not rows:
        return None
    item = table.item(rows[0].row(), 0)
    return item.data(Qt.ItemDataRole.UserRole) if item is not None else None


SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def plus_minus(value: float | None, sigma: float | None, *, digits: int = 2) -> str:
    """A value with its 1-sigma uncertainty in one power of ten ("1.074 ± 0.004 ×10⁻²"), decimals set by sigma."""
    if value is None:
        return "—"
    if sigma is None or sigma == 0 or not math.isfinite(sigma):
        return f"{value:.5g}"
    exponent = math.floor(math.log10(abs(value))) if value else math.floor(math.log10(abs(sigma)))
    if -1 <= exponent <= 2:  # 0.54 ± 0.02 and 12.5 ± 0.3 read better without a power of ten
        exponent = 0
    scale = 10.0 ** exponent
    # as many decimals as the uncertainty's `digits` significant figures need
    decimals = max(0, exponent - math.floor(math.log10(abs(sigma))) + digits - 1)
    mantissa, error = value / scale, sigma / scale
    suffix = f" ×10{str(exponent).translate(SUPERSCRIPTS)}" if exponent else ""
    return f"{mantissa:.{decimals}f} ± {error:.{decimals}f}{suffix}"


class JobProgress(QWidget):
    """A background job on its page: message, progress bar and Cancel (Esc while it runs)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.message = QLabel()
        self.message.setProperty("muted", True)
        self.bar = QProgressBar()
        self.bar.setMinimumWidth(220)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this job (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.message, 2)
        layout.addWidget(self.cancel_button)
        self.job: Job | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(120)
        self.timer.timeout.connect(self.poll)
        self.shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.shortcut.activated.connect(self.cancel)
        self.shortcut.setEnabled(False)
        self.hide()

    def follow(self, job: Job) -> None:
        """Show `job` until it ends."""
        self.job = job
        self.bar.setRange(0, 0)
        self.message.setText(job.title)
        self.cancel_button.setEnabled(job.cancellable)
        self.shortcut.setEnabled(job.cancellable)
        job.ended.connect(self._ended)
        self.show()
        self.timer.start()

    def running(self) -> bool:
        return self.job is not None and self.job.running

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.message.setText("cancelling…")

    def poll(self) -> None:
        if self.job is None:
            return
        snap = self.job.snapshot()
        if snap.total:
            self.bar.setRange(0, int(snap.total))
            self.bar.setValue(int(min(snap.done, snap.total)))
        if snap.message:
            self.message.setText(snap.message)

    def _ended(self) -> None:
        self.timer.stop()
        self.shortcut.setEnabled(False)
        self.job = None
        self.hide()

"""What LABEL shows beside the answer for items that are not images: a document's text, a
telemetry series' plot.

`ItemContentView` is a stack of one widget per view kind (``services.item_kinds``' ``view``:
"text", "plot"); `VIEWS` maps a view kind to its widget class, so a new kind adds an entry, not
a branch. The content (extracted text, downsampled series) comes from the store through the
operation layer (`item_text.item_content`), never from the file and never on the GUI thread.
Keys typed on the view are handed on like the image canvas does (`text_typed`), so digits and
Enter keep working when a document is shown.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QStackedWidget, QVBoxLayout, QWidget

from vital_desktop.services import item_text
from vital_desktop.ui import theme

#: plot line colours, one per channel (cycled)
_COLORS = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f")


class DocumentText(QPlainTextEdit):
    """A document's extracted text, read-only, with its page count and warnings above it."""

    text_typed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setObjectName("documentText")
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        self.setFont(font)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)

    def show_content(self, info: item_text.ItemContentInfo) -> None:
        self.setPlainText(info.text or "(no text was extracted from this document)")
        self.moveCursor(self.textCursor().MoveOperation.Start)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        text = event.text()
        if text and text.isprintable() and not text.isspace() and \
                not event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self.text_typed.emit(text)  # letters filter the classes, as on the image canvas
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Left, Qt.Key.Key_Right):
            event.ignore()  # the tool's own keys (save and next, previous/next item)
            return
        super().keyPressEvent(event)


class TelemetryPlot(pg.GraphicsLayoutWidget):
    """A telemetry item's channels over time (or reading number): one small plot per channel,
    stacked with a shared x axis, so channels of very different scales all stay readable."""

    text_typed = Signal(str)
    MAX_SHOWN = 8  # channels plotted; the facts line names them all

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(theme.SURFACE)
        self.channels: list[str] = []
        self.plots: list[pg.PlotItem] = []

    def curves(self) -> list[Any]:
        return [item for plot in self.plots for item in plot.listDataItems()]

    def show_content(self, info: item_text.ItemContentInfo) -> None:
        self.clear()
        self.plots = []
        series = info.series or {}
        plot = series.get("plot") or {}
        summary = series.get("summary") or {}
        times = plot.get("t") or []
        xs, dated = _x_values(times)
        self.channels = [c["name"] for c in summary.get("channels", []) if c["name"] in plot][: self.MAX_SHOWN]
        first: pg.PlotItem | None = None
        for i, name in enumerate(self.channels):
            axis = {"bottom": pg.DateAxisItem()} if dated else {}
            item = self.addPlot(row=i, col=0, axisItems=axis)
            item.setMenuEnabled(False)
            item.hideButtons()
            item.showGrid(x=True, y=True, alpha=0.2)
            item.setTitle(name, color=theme.TEXT, size="8pt")  # a rotated axis label would not fit a short plot
            for side in ("left", "bottom"):
                item.getAxis(side).setPen(theme.MUTED)
                item.getAxis(side).setTextPen(theme.TEXT)
                item.getAxis(side).enableAutoSIPrefix(False)
            item.getAxis("left").setWidth(52)
            ys = [float("nan") if v is None else float(v) for v in plot[name]]
            item.plot(xs, ys, pen=pg.mkPen(_COLORS[i % len(_COLORS)], width=2))
            if first is None:
                first = item
            else:
                item.setXLink(first)
            if i < len(self.channels) - 1:
                item.getAxis("bottom").setStyle(showValues=False)
            self.plots.append(item)
        if self.plots:
            self.plots[-1].setLabel("bottom", "time" if dated else "reading", color=theme.TEXT)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        text = event.text()
        if text and text.isprintable() and not text.isspace():
            self.text_typed.emit(text)
            return
        event.ignore()


def _x_values(times: list[Any]) -> tuple[list[float], bool]:
    """Numbers for the x axis: the times as seconds since the epoch when they are ISO dates,
    numbers as they are, else the reading number."""
    import datetime as dt

    if times and all(isinstance(t, (int, float)) for t in times):
        return [float(t) for t in times], False
    try:
        stamps = [dt.datetime.fromisoformat(str(t)) for t in times]
    except ValueError:
        return [float(i) for i in range(len(times))], False
    return [(s if s.tzinfo else s.replace(tzinfo=dt.UTC)).timestamp() for s in stamps], bool(stamps)


#: view kind (services.item_kinds ItemKind.view) → widget class
VIEWS: dict[str, type] = {"text": DocumentText, "plot": TelemetryPlot}


class ItemContentView(QWidget):
    """The content of a document or telemetry item, with a line of facts (pages, warnings) on top."""

    text_typed = Signal(str)
    shown = Signal(str)  # item ref, once its content is on screen

    def __init__(self, context: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.facts = QLabel("")
        self.facts.setWordWrap(True)
        self.facts.setStyleSheet(f"color: {theme.MUTED};")
        layout.addWidget(self.facts)
        self.stack = QStackedWidget()
        layout.addWidget(self.stack, 1)
        self.views: dict[str, Any] = {}
        for kind, cls in VIEWS.items():
            widget = cls()
            widget.text_typed.connect(self.text_typed)
            self.views[kind] = widget
            self.stack.addWidget(widget)
        self.item_ref: str | None = None
        self.info: item_text.ItemContentInfo | None = None

    def current(self) -> Any:
        return self.stack.currentWidget()

    def setFocus(self, *args: Any) -> None:  # noqa: N802 - Qt's name
        self.current().setFocus(*args)

    def show_item(self, sheet: str, item_ref: str) -> None:
        """Read the item's stored content in the background and show it when it arrives."""
        self.item_ref = item_ref
        self.facts.setText("loading…")

        def read(op: Any) -> item_text.ItemContentInfo:
            return item_text.item_content(op.store, sheet, item_ref)

        self.context.query("item content", read, on_result=self.show_content,
                           on_error=lambda exc: self.facts.setText(f"cannot show this item: {exc}"),
                           key=f"item-content-{id(self)}", owner=self)

    def show_content(self, info: item_text.ItemContentInfo) -> None:
        if self.item_ref is not None and info.item_ref != self.item_ref:
            return  # an older request
        self.info = info
        widget = self.views.get(info.view)
        if widget is None:
            self.facts.setText(f"items of kind {info.kind!r} have no view here")
            return
        had_focus = self.current().hasFocus()
        self.stack.setCurrentWidget(widget)
        widget.show_content(info)
        if had_focus:
            widget.setFocus()
        self.facts.setText(facts_line(info.metadata))
        self.shown.emit(info.item_ref)


def facts_line(metadata: dict[str, Any]) -> str:
    """Pages, size and extraction warnings of a document; points and channels of a series."""
    parts = []
    if metadata.get("format"):
        parts.append(str(metadata["format"]).upper())
    if metadata.get("pages"):
        parts.append(f"{metadata['pages']} page(s)")
    if metadata.get("chars") is not None:
        parts.append(f"{metadata['chars']:,} characters")
    if metadata.get("points"):
        parts.append(f"{metadata['points']:,} readings")
    if metadata.get("channels"):
        parts.append("channels: " + ", ".join(metadata["channels"]))
    if metadata.get("truncated"):
        parts.append("TRUNCATED")
    warnings = metadata.get("warnings") or []
    line = " · ".join(parts)
    if warnings:
        line += f"\n⚠ {len(warnings)} warning(s): " + "; ".join(str(w) for w in warnings[:3])
    return line


def shows_content(kind: str | None) -> bool:
    """Whether items of this kind are shown by `ItemContentView` (not the image canvas)."""
    from vital_desktop.services.item_kinds import ITEM_KINDS

    found = ITEM_KINDS.get(kind or "image")
    return found is not None and found.view in VIEWS


def context_items(metadata: dict[str, Any], skip: tuple[str | None, ...] = ()) -> list[str]:
    """``key: value`` lines of an item's metadata for the context line, without the long content
    variables (the document text, the telemetry summary) the content view already shows."""
    from vital_desktop.services.item_kinds import ITEM_KINDS

    kind = ITEM_KINDS.get(str(metadata.get("item_kind") or "image"))
    hidden = {*skip, "warnings", *([kind.prompt_variable] if kind is not None and kind.prompt_variable else [])}
    return [f"{k}: {v}" for k, v in metadata.items() if k not in hidden]


def content_preview(metadata: dict[str, Any], chars: int = 420) -> str:
    """The DATA page's preview of a document or telemetry item: its facts and the start of its text."""
    from vital_desktop.services.item_kinds import ITEM_KINDS

    kind = ITEM_KINDS.get(str(metadata.get("item_kind") or "image"))
    body = str(metadata.get(kind.prompt_variable) or "") if kind is not None and kind.prompt_variable else ""
    if len(body) > chars:
        body = body[:chars].rsplit(" ", 1)[0] + " …"
    return facts_line(metadata) + ("\n\n" + body if body else "")

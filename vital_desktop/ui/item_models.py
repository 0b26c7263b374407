"""Item models that fetch on demand, so a 100,000-item sheet opens at once and scrolls freely.

`ItemPager` knows the item count up front (the sheet row has it) and loads pages of
`ItemInfo` in the compute pool the first time a row is painted; until then the row shows a
placeholder. `ItemGridModel` maps view rows to item positions (all items, or those of one
label status) and asks the image cache for thumbnails, which also arrive off the GUI thread.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from vital_desktop.services import sheets as sheet_service
from vital_desktop.services.sheets import ItemInfo
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.images import THUMBNAIL_SIZE

ItemRole = Qt.ItemDataRole.UserRole + 1
StatusRole = Qt.ItemDataRole.UserRole + 2
PositionRole = Qt.ItemDataRole.UserRole + 3

PAGE_SIZE = 200


class ItemPager(QObject):
    """Pages of one sheet's items, loaded in the background on first use."""

    page_loaded = Signal(int, int)  # first and last position loaded

    def __init__(self, context: AppContext, sheet: str, total: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.sheet = sheet
        self.total = total
        self._pages: dict[int, list[ItemInfo]] = {}
        self._pending: set[int] = set()

    def item(self, position: int) -> ItemInfo | None:
        """The item if its page is loaded; otherwise schedule the page and return None."""
        page = position // PAGE_SIZE
        items = self._pages.get(page)
        if items is None:
            self.request_page(page)
            return None
        offset = position - page * PAGE_SIZE
        return items[offset] if offset < len(items) else None

    def request_page(self, page: int) -> None:
        if page in self._pages or page in self._pending or page < 0 or page * PAGE_SIZE >= self.total:
            return
        self._pending.add(page)
        sheet = self.sheet
        self.context.query(
            "items", lambda op: sheet_service.list_items(op.store, sheet, offset=page * PAGE_SIZE, limit=PAGE_SIZE),
            on_result=partial(self._loaded, page), on_error=partial(self._page_failed, page), owner=self,
        )

    def _page_failed(self, page: int, _exc: BaseException) -> None:
        self._pending.discard(page)

    def _loaded(self, page: int, items: list[ItemInfo]) -> None:
        self._pending.discard(page)
        self._store_page(page, items)

    def _store_page(self, page: int, items: list[ItemInfo]) -> None:
        self._pending.discard(page)
        self._pages[page] = items
        if items:
            self.page_loaded.emit(page * PAGE_SIZE, page * PAGE_SIZE + len(items) - 1)

    def invalidate(self) -> None:
        self._pages.clear()

    def loaded_pages(self) -> int:
        return len(self._pages)


class ItemGridModel(QAbstractListModel):
    """Rows are items of a sheet (optionally only those of some label statuses)."""

    def __init__(self, context: AppContext, pager: ItemPager, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.pager = pager
        self.refs: list[str] | None = None  # position -> item_ref when known (labeling tool)
        self.statuses: dict[str, str] = {}
        #: how many items have each status but "unlabeled" (kept with `statuses`: the progress
        #: line reads it after every save without a pass over a million statuses on the GUI thread)
        self.status_counts: Counter[str] = Counter()
        self.positions: list[int] | None = None  # row -> position when filtered
        self._thumb_rows: dict[str, set[int]] = {}
        pager.page_loaded.connect(self._page_loaded)
        context.images.thumbnail_ready.connect(self._thumbnail_ready)

    # --- filtering --------------------------------------------------------------------------
    def set_statuses(self, refs: list[str], statuses: dict[str, str], counts: Counter[str] | None = None) -> None:
        """Every item's ref and label status; `counts` (the statuses counted off the GUI thread), if known."""
        self.refs = refs
        self.statuses = statuses
        self.status_counts = Counter(statuses.values()) if counts is None else counts
        self.layoutChanged.emit()

    def update_status(self, item_ref: str, status: str) -> None:
        before = self.statuses.get(item_ref)
        if before is not None:
            self.status_counts[before] -= 1
        if status != "unlabeled":
            self.status_counts[status] += 1
        if status == "unlabeled":
            self.statuses.pop(item_ref, None)
        else:
            self.statuses[item_ref] = status
        row = self.row_of_ref(item_ref)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index)

    def status_of(self, position: int) -> str:
        if self.refs is None or position >= len(self.refs):
            return ""
        return self.statuses.get(self.refs[position], "unlabeled")

    def set_filter(self, status: str | None) -> None:
        """Show only items whose label status is `status` (None: all items)."""
        self.beginResetModel()
        if status is None or self.refs is None:
            self.positions = None
        else:
            self.positions = [p for p in range(len(self.refs)) if self.status_of(p) == status]
        self._thumb_rows.clear()
        self.endResetModel()

    def position(self, row: int) -> int:
        return self.positions[row] if self.positions is not None else row

    def row_of_position(self, position: int) -> int | None:
        if self.positions is None:
            return position if 0 <= position < self.pager.total else None
        try:
            return self.positions.index(position)
        except ValueError:
            return None

    def next_unlabeled(self, after: int, queue: list[str], current: str | None = None) -> int | None:
        """The position of the next item without a label: first from `queue` (a suggested order;
        refs labeled meanwhile, unknown or `current` are taken off it), else the next unlabeled
        position after `after`, wrapping around; None when every item has a label."""
        if self.refs is None:
            return None
        refs, statuses = self.refs, self.statuses
        while queue:
            ref = queue[0]
            if ref in statuses or ref == current:
                queue.pop(0)
                continue
            try:
                return refs.index(ref)
            except ValueError:
                queue.pop(0)
        n = len(refs)
        for offset in range(1, n + 1):
            position = (after + offset) % n
            if refs[position] not in statuses:
                return position if position != after else None
        return None

    def row_of_ref(self, item_ref: str) -> int | None:
        if self.refs is None:
            return None
        try:
            return self.row_of_position(self.refs.index(item_ref))
        except ValueError:
            return None

    # --- Qt model -----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return len(self.positions) if self.positions is not None else self.pager.total

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        position = self.position(index.row())
        if role == PositionRole:
            return position
        if role == StatusRole:
            return self.status_of(position)
        item = self.pager.item(position)
        if role == Qt.ItemDataRole.DisplayRole:
            if item is not None:
                return item.item_ref
            return self.refs[position] if self.refs is not None else "…"
        if role == ItemRole:
            return item
        if role == Qt.ItemDataRole.DecorationRole:
            if item is None or item.missing or not item.absolute_image_path:
                return None
            pixmap = self.context.images.thumbnail(item.absolute_image_path)
            if pixmap is None:
                self._thumb_rows.setdefault(item.absolute_image_path, set()).add(index.row())
            return pixmap
        if role == Qt.ItemDataRole.ToolTipRole and item is not None:
            return f"{item.item_ref}\n{item.image_path or 'no image'}" + ("\n(image missing)" if item.missing else "")
        return None

    def _page_loaded(self, first: int, last: int) -> None:
        if self.positions is None:
            self.dataChanged.emit(self.index(first), self.index(min(last, self.rowCount() - 1)))
        else:
            rows = [r for r, p in enumerate(self.positions) if first <= p <= last]
            if rows:
                self.dataChanged.emit(self.index(rows[0]), self.index(rows[-1]))

    def _thumbnail_ready(self, path: str) -> None:
        for row in self._thumb_rows.pop(path, ()):
            if row < self.rowCount():
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ItemCardDelegate(QStyledItemDelegate):
    """A thumbnail card: image (or placeholder), item ref, and a label-status stripe."""

    CARD = QSize(THUMBNAIL_SIZE + 20, THUMBNAIL_SIZE + 40)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.CARD

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = option.rect.adjusted(4, 4, -4, -4)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setPen(QPen(QColor(theme.ACCENT if selected else theme.BORDER), 2 if selected else 1))
        painter.setBrush(QColor(theme.ACCENT_SOFT if selected else theme.SURFACE))
        painter.drawRoundedRect(rect, 6, 6)
        image_rect = QRect(rect.left() + 6, rect.top() + 6, rect.width() - 12, THUMBNAIL_SIZE - 4)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is not None and not pixmap.isNull():
            scaled = pixmap.scaled(image_rect.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
            x = image_rect.left() + (image_rect.width() - scaled.width()) // 2
            y = image_rect.top() + (image_rect.height() - scaled.height()) // 2
            painter.drawPixmap(x, y, scaled)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(theme.PLACEHOLDER))
            painter.drawRoundedRect(image_rect, 4, 4)
            item = index.data(ItemRole)
            if item is not None and item.missing:
                painter.setPen(QColor(theme.DANGER))
                painter.drawText(image_rect, Qt.AlignmentFlag.AlignCenter, "image missing")
        status = index.data(StatusRole)
        text_rect = QRect(rect.left() + 6, image_rect.bottom() + 4, rect.width() - 12, 22)
        if status:
            color = QColor(theme.STATUS_COLORS.get(status, theme.MUTED))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawEllipse(text_rect.left(), text_rect.center().y() - 4, 8, 8)
            text_rect.adjust(14, 0, 0, 0)
        font = QFont(option.font)
        font.setPointSizeF(max(8.0, font.pointSizeF() - 0.5))
        painter.setFont(font)
        painter.setPen(QColor(theme.TEXT))
        text = painter.fontMetrics().elidedText(str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
                                                Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        painter.restore()

"""An image view with zoom (wheel), pan (drag) and optional box drawing for localization labels."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from vital_desktop.ui import theme

BOX_COLORS = {"inclusion": "#e65100", "crack": "#c62828", "delamination": "#6a1b9a",
              "surface_contamination": "#00838f"}


class ImageView(QGraphicsView):
    """Shows one image fitted to the view; wheel zooms around the cursor, drag pans.

    With `box_mode` on, a left drag draws a box (reported in image pixels by `box_drawn`);
    the middle button still pans.
    """

    box_drawn = Signal(float, float, float, float)
    image_shown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(QBrush(QColor("#20262c")))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 280)
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._pixmap_item)
        self._message = QGraphicsSimpleTextItem("")
        self._message.setBrush(QColor("#cfd8dc"))
        self.scene().addItem(self._message)
        self._boxes: list[QGraphicsRectItem] = []
        self.box_mode = False
        self._drag_start: QPointF | None = None
        self._rubber: QGraphicsRectItem | None = None
        self._zoomed = False

    # --- content --------------------------------------------------------------------------
    def show_pixmap(self, pixmap: QPixmap | None, message: str = "") -> None:
        """Show an image (or a message when there is none) and fit it to the view."""
        self._message.setText("" if pixmap is not None else message)
        self._pixmap_item.setPixmap(pixmap if pixmap is not None else QPixmap())
        rect = QRectF(self._pixmap_item.pixmap().rect()) if pixmap is not None else \
            self._message.boundingRect().adjusted(-20, -20, 20, 20)
        self.scene().setSceneRect(rect)
        self._zoomed = False
        self.fit()
        self.image_shown.emit()

    def has_image(self) -> bool:
        return not self._pixmap_item.pixmap().isNull()

    def fit(self) -> None:
        self.resetTransform()
        rect = self.scene().sceneRect()
        if rect.width() > 0 and rect.height() > 0:
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom_factor(self) -> float:
        return self.transform().m11()

    def zoom(self, factor: float) -> None:
        self._zoomed = True
        self.scale(factor, factor)

    def set_boxes(self, boxes: list[dict]) -> None:
        """Draw localization boxes ({x, y, width, height, label}) over the image."""
        for item in self._boxes:
            self.scene().removeItem(item)
        self._boxes = []
        for box in boxes:
            color = QColor(BOX_COLORS.get(box.get("label", ""), theme.ACCENT))
            rect = QGraphicsRectItem(box["x"], box["y"], box["width"], box["height"])
            pen = QPen(color, 2)
            pen.setCosmetic(True)
            rect.setPen(pen)
            fill = QColor(color)
            fill.setAlpha(40)
            rect.setBrush(fill)
            text = QGraphicsSimpleTextItem(box.get("label", ""), rect)
            text.setBrush(color)
            text.setPos(box["x"], max(0.0, box["y"] - 14))
            text.setFlag(QGraphicsSimpleTextItem.GraphicsItemFlag.ItemIgnoresTransformations)
            self.scene().addItem(rect)
            self._boxes.append(rect)

    def box_count(self) -> int:
        return len(self._boxes)

    def set_box_mode(self, enabled: bool) -> None:
        self.box_mode = enabled
        self.setDragMode(QGraphicsView.DragMode.NoDrag if enabled else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if enabled else Qt.CursorShape.OpenHandCursor)

    # --- events -----------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.15 if event.angleDelta().y() > 0 else 1 / 1.15
        self.zoom(factor)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.fit()

    def resizeEvent(self, event) -> None:  # keep the image fitted until the user zooms
        super().resizeEvent(event)
        if not self._zoomed:
            self.fit()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.box_mode and event.button() == Qt.MouseButton.LeftButton and self.has_image():
            self._drag_start = self._clamp(self.mapToScene(event.position().toPoint()))
            self._rubber = QGraphicsRectItem(QRectF(self._drag_start, self._drag_start))
            pen = QPen(QColor(theme.ACCENT), 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber.setPen(pen)
            self.scene().addItem(self._rubber)
            return
        if event.button() == Qt.MouseButton.MiddleButton:
            self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._rubber is not None and self._drag_start is not None:
            end = self._clamp(self.mapToScene(event.position().toPoint()))
            self._rubber.setRect(QRectF(self._drag_start, end).normalized())
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._rubber is not None:
            rect = self._rubber.rect()
            self.scene().removeItem(self._rubber)
            self._rubber = None
            self._drag_start = None
            if rect.width() >= 3 and rect.height() >= 3:
                self.box_drawn.emit(round(rect.x(), 1), round(rect.y(), 1), round(rect.width(), 1),
                                    round(rect.height(), 1))
            return
        super().mouseReleaseEvent(event)
        if self.box_mode:
            self.setDragMode(QGraphicsView.DragMode.NoDrag)

    def _clamp(self, point: QPointF) -> QPointF:
        rect = self.scene().sceneRect()
        return QPointF(min(max(point.x(), rect.left()), rect.right()), min(max(point.y(), rect.top()), rect.bottom()))

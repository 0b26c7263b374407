"""The canvas: an image with zoom (wheel) and pan, and the shapes of a geometry label on top.

Without a shape model (Mode A review) a left drag pans. With one (`set_shape_model`), the left
button edits the model's kind:

- boxes: drag on empty space draws a box; drag a box to move it, a corner to resize it;
- polygons: each click adds a vertex to the open polygon; a click on its first vertex (or a
  double-click, or Enter through the tool) closes it; drag a vertex or the whole shape;
- points: a click adds a point; drag one to move it.

A press on a shape selects it; Backspace/Delete removes the open polygon's last vertex, the
selected vertex or the selected shape. The right or middle button pans, double-click on empty
space fits the image. All shapes are painted by one item (`ShapeOverlay`) in image pixels with
cosmetic pens, so a 200-vertex polygon costs one path per frame.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from vital_desktop.ui.shape_model import Hit, ShapeModel, vertices

#: how close (screen pixels) a press must be to a vertex to grab it
GRAB_PIXELS = 7.0
HANDLE_PIXELS = 4.0
POINT_PIXELS = 5.0
MIN_BOX_PIXELS = 3.0


class ShapeOverlay(QGraphicsItem):
    """Paints every shape of a `ShapeModel` (and the polygon being drawn) over the image."""

    def __init__(self) -> None:
        super().__init__()
        self.model: ShapeModel | None = None
        self.area = QRectF()
        self.hover: QPointF | None = None
        self.rubber: QRectF | None = None
        self.setZValue(10)

    def set_area(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self.area = QRectF(rect)

    def boundingRect(self) -> QRectF:
        return self.area.adjusted(-40, -40, 40, 40)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        model = self.model
        if model is None:
            return
        scale = painter.worldTransform().m11() or 1.0
        for index, shape in enumerate(model.shapes):
            self._paint_shape(painter, model, shape, index == model.selected, scale)
        if model.drawing:
            self._paint_drawing(painter, model, scale)
        if self.rubber is not None:
            pen = QPen(QColor(model.color_of({"label": model.current_label})), 2, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.rubber)

    def _paint_shape(self, painter: QPainter, model: ShapeModel, shape: dict, selected: bool, scale: float) -> None:
        color = QColor(model.color_of(shape))
        pen = QPen(color, 3 if selected else 2)
        pen.setCosmetic(True)
        fill = QColor(color)
        fill.setAlpha(70 if selected else 35)
        painter.setPen(pen)
        painter.setBrush(fill)
        kind = model.kind
        if kind == "boxes":
            painter.drawRect(QRectF(shape["x"], shape["y"], shape["width"], shape["height"]))
        elif kind == "polygons":
            painter.drawPolygon(QPolygonF([QPointF(p[0], p[1]) for p in shape["points"]]))
        else:
            radius = POINT_PIXELS / scale
            painter.setBrush(color if selected else fill)
            painter.drawEllipse(QPointF(shape["x"], shape["y"]), radius, radius)
        points = vertices(kind, shape)
        if selected and kind != "points":
            self._paint_handles(painter, points, color, model.selected_vertex, scale)
        spec = model.class_of(shape)
        self._paint_text(painter, points[0], spec.title if spec else str(shape.get("label", "")), color)

    @staticmethod
    def _paint_handles(painter: QPainter, points: list[tuple[float, float]], color: QColor, chosen: int | None,
                       scale: float) -> None:
        size = HANDLE_PIXELS / scale
        pen = QPen(color, 1)
        pen.setCosmetic(True)
        painter.save()
        # Axis-aligned squares need no antialiasing; with it, 200 handles cost ~12 ms a frame.
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(pen)
        painter.setBrush(QColor("#ffffff"))
        painter.drawRects([QRectF(x - size, y - size, 2 * size, 2 * size)
                           for i, (x, y) in enumerate(points) if i != chosen])
        if chosen is not None and 0 <= chosen < len(points):
            x, y = points[chosen]
            painter.setBrush(color)
            painter.drawRect(QRectF(x - 1.5 * size, y - 1.5 * size, 3 * size, 3 * size))
        painter.restore()

    def _paint_drawing(self, painter: QPainter, model: ShapeModel, scale: float) -> None:
        assert model.drawing is not None
        color = QColor(model.color_of({"label": model.current_label}))
        pen = QPen(color, 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        points = [QPointF(p[0], p[1]) for p in model.drawing]
        if self.hover is not None:
            points.append(self.hover)
        painter.drawPolyline(QPolygonF(points))
        self._paint_handles(painter, [(p[0], p[1]) for p in model.drawing], color, 0, scale)

    @staticmethod
    def _paint_text(painter: QPainter, at: tuple[float, float], text: str, color: QColor) -> None:
        if not text:
            return
        painter.save()
        position = painter.worldTransform().map(QPointF(at[0], at[1]))
        painter.resetTransform()
        painter.setPen(color)
        painter.drawText(position + QPointF(4, -5), text)
        painter.restore()


class ImageView(QGraphicsView):
    """Shows one image fitted to the view; wheel zooms around the cursor; edits a shape model."""

    image_shown = Signal()
    #: a printable key typed while the canvas has focus (not a shortcut): type-to-filter classes
    text_typed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(QBrush(QColor("#20262c")))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(320, 240)
        self.setMouseTracking(True)
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._pixmap_item)
        self._message = QGraphicsSimpleTextItem("")
        self._message.setBrush(QColor("#cfd8dc"))
        self.scene().addItem(self._message)
        self.overlay = ShapeOverlay()
        self.scene().addItem(self.overlay)
        self.model: ShapeModel | None = None
        self.editable = True
        self._zoomed = False
        self._pan_from: QPoint | None = None
        self._drag: tuple[Hit, QPointF, list[dict]] | None = None
        self._box_start: QPointF | None = None

    # --- content --------------------------------------------------------------------------
    def show_pixmap(self, pixmap: QPixmap | None, message: str = "") -> None:
        """Show an image (or a message when there is none) and fit it to the view."""
        self._message.setText("" if pixmap is not None else message)
        self._pixmap_item.setPixmap(pixmap if pixmap is not None else QPixmap())
        rect = QRectF(self._pixmap_item.pixmap().rect()) if pixmap is not None else \
            self._message.boundingRect().adjusted(-20, -20, 20, 20)
        self.scene().setSceneRect(rect)
        self.overlay.set_area(rect)
        self._sync_bounds()
        self._zoomed = False
        self.fit()
        self.image_shown.emit()

    def has_image(self) -> bool:
        return not self._pixmap_item.pixmap().isNull()

    def image_size(self) -> tuple[int, int] | None:
        """The shown image's width and height in pixels (None without an image)."""
        pixmap = self._pixmap_item.pixmap()
        return None if pixmap.isNull() else (pixmap.width(), pixmap.height())

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

    def set_shape_model(self, model: ShapeModel | None, *, editable: bool = True) -> None:
        """Edit `model`'s shapes on this canvas (None: a plain image view that pans on drag);
        with `editable` False the shapes are only shown (review) and a drag pans."""
        if self.model is not None:
            self.model.changed.disconnect(self.overlay.update)
        self.model = model
        self.editable = editable
        self.overlay.model = model
        self._drag = self._box_start = None
        self.overlay.rubber = self.overlay.hover = None
        if model is not None:
            model.changed.connect(self.overlay.update)
            self._sync_bounds()
        editing = model is not None and editable
        self.setDragMode(QGraphicsView.DragMode.NoDrag if editing else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if editing else Qt.CursorShape.OpenHandCursor)
        self.overlay.update()

    def _sync_bounds(self) -> None:
        if self.model is not None:
            size = self.image_size()
            self.model.bounds = (float(size[0]), float(size[1])) if size else None

    # --- events -----------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.15 if event.angleDelta().y() > 0 else 1 / 1.15
        self.zoom(factor)

    def resizeEvent(self, event) -> None:  # keep the image fitted until the user zooms
        super().resizeEvent(event)
        if not self._zoomed:
            self.fit()

    def _scene_point(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def _editing(self) -> bool:
        return self.model is not None and self.editable and self.has_image()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._editing() and self.model is not None and self.model.drawing:
            self.model.close_polygon()
            return
        if self._editing() and self.model is not None and \
                self.model.hit(*self._xy(self._scene_point(event)), self._tolerance()) is not None:
            return
        self.fit()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() != Qt.MouseButton.LeftButton or not self._editing():
            super().mousePressEvent(event)
            return
        self.setFocus()
        model = self.model
        assert model is not None
        point = self._scene_point(event)
        x, y = self._xy(point)
        if model.kind == "polygons" and model.drawing:
            first = model.drawing[0]
            if len(model.drawing) >= 3 and abs(first[0] - x) + abs(first[1] - y) <= 2 * self._tolerance():
                model.close_polygon()
            else:
                model.add_vertex(x, y)
            return
        hit = model.hit(x, y, self._tolerance())
        if hit is not None:
            model.select(hit.shape, hit.vertex)
            model.begin_drag()
            self._drag = (hit, point, model.value())
            return
        model.select(None)
        if model.kind == "boxes":
            self._box_start = QPointF(*model.clamp(x, y))
            self.overlay.rubber = QRectF(self._box_start, self._box_start)
        elif model.kind == "points":
            model.add_point(x, y)
        else:
            model.add_vertex(x, y)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position().toPoint() - self._pan_from
            self._pan_from = event.position().toPoint()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            return
        model = self.model
        if model is None or not self.editable:
            super().mouseMoveEvent(event)
            return
        point = self._scene_point(event)
        if self._drag is not None:
            hit, start, origin = self._drag
            if hit.vertex is not None:
                model.move_vertex(hit.shape, hit.vertex, *self._xy(point))
            else:
                model.move_shape(hit.shape, origin, point.x() - start.x(), point.y() - start.y())
            return
        if self._box_start is not None:
            end = QPointF(*model.clamp(*self._xy(point)))
            self.overlay.rubber = QRectF(self._box_start, end).normalized()
            self.overlay.update()
            return
        if model.drawing:
            self.overlay.hover = QPointF(*model.clamp(*self._xy(point)))
            self.overlay.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.CrossCursor if self.model else Qt.CursorShape.OpenHandCursor)
            return
        model = self.model
        if model is not None and self._drag is not None:
            hit = self._drag[0]
            self._drag = None
            model.end_drag("move vertex" if hit.vertex is not None else "move shape")
            return
        if model is not None and self._box_start is not None:
            rect = self.overlay.rubber or QRectF()
            self._box_start, self.overlay.rubber = None, None
            minimum = MIN_BOX_PIXELS / (self.zoom_factor() or 1.0)
            if rect.width() >= minimum and rect.height() >= minimum:
                model.add_box(rect.x(), rect.y(), rect.width(), rect.height())
            self.overlay.update()
            return
        super().mouseReleaseEvent(event)

    def event(self, event: QEvent) -> bool:
        # Backspace/Delete edit the shapes, never trigger a window shortcut meanwhile.
        if event.type() == QEvent.Type.ShortcutOverride and self.model is not None and self.editable and \
                isinstance(event, QKeyEvent) and event.key() in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self.model is not None and self.editable and event.key() in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
            self.model.delete()
            return
        text = event.text()
        if text and text.isprintable() and not text.isspace() and \
                not event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self.text_typed.emit(text)
            return
        super().keyPressEvent(event)

    def _tolerance(self) -> float:
        return GRAB_PIXELS / (self.zoom_factor() or 1.0)

    @staticmethod
    def _xy(point: QPointF) -> tuple[float, float]:
        return point.x(), point.y()


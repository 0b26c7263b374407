"""Images decoded off the GUI thread and cached: thumbnails for grids, full images for review.

`QImage` may be created in any thread (QPixmap may not), so workers decode with
`QImageReader` (scaled while decoding for thumbnails) and the GUI thread turns the result into
a `QPixmap` once. Each cache is a bounded LRU; a request already in flight is not repeated.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

from vital_desktop.services.image_access import check_item
from vital_desktop.ui.workers import JobRunner

THUMBNAIL_SIZE = 128


def decode_image(path: str, max_side: int | None = None) -> QImage:
    """Decode an image file (scaled while decoding when `max_side` is given); null if unreadable."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    if max_side:
        size = reader.size()
        if size.isValid() and max(size.width(), size.height()) > max_side:
            size.scale(QSize(max_side, max_side), Qt.AspectRatioMode.KeepAspectRatio)
            reader.setScaledSize(size)
    image = reader.read()
    return image


def _decode_thumbnail(path: str, _progress: Any) -> QImage:
    return decode_image(path, THUMBNAIL_SIZE)


class _LRU(OrderedDict):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: str, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)

    def get_fresh(self, key: str) -> object | None:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value


class ImageCache(QObject):
    """Thumbnails and full images by file path, decoded in the compute pool."""

    thumbnail_ready = Signal(str)
    image_ready = Signal(str)

    def __init__(self, jobs: JobRunner, *, thumbnails: int = 4000, images: int = 48,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._thumbs = _LRU(thumbnails)
        self._images = _LRU(images)
        self._pending_thumbs: set[str] = set()
        self._pending_images: set[str] = set()
        self.failed: set[str] = set()
        #: sheet items whose full image goes through the image-access guard, by path
        self._expected: dict[str, object] = {}
        #: why the guard refused a path (shown instead of the image)
        self.refused: dict[str, str] = {}

    def expect(self, item: object) -> None:
        """Check `item`'s image (an `ItemInfo`) against the sheet's index before its full image is shown."""
        path = getattr(item, "absolute_image_path", None)
        if path:
            self._expected[path] = item

    def _decode_full(self, path: str) -> QImage | str:
        """The full image, or the guard's refusal (a message) for an expected sheet item."""
        item = self._expected.get(path)
        if item is not None:
            access = check_item(item)
            if access.problem is not None:
                return access.problem
        return decode_image(path)

    def _decode_full_job(self, path: str, _progress: Any) -> QImage | str:
        return self._decode_full(path)

    # --- thumbnails ---------------------------------------------------------------------------
    def thumbnail(self, path: str | None) -> QPixmap | None:
        """The cached thumbnail, or None after scheduling its decode (watch `thumbnail_ready`)."""
        if not path or path in self.failed:
            return None
        cached = self._thumbs.get_fresh(path)
        if cached is not None:
            return cached  # type: ignore[return-value]
        if path not in self._pending_thumbs:
            self._pending_thumbs.add(path)
            self._jobs.submit("thumbnail", partial(_decode_thumbnail, path), on_result=partial(self._thumb_done, path),
                              on_error=partial(self._thumb_failed_exc, path), visible=False)
        return None

    def _thumb_done(self, path: str, image: QImage) -> None:
        self._pending_thumbs.discard(path)
        if image.isNull():
            self.failed.add(path)
            return
        self._thumbs.put(path, QPixmap.fromImage(image))
        self.thumbnail_ready.emit(path)

    def _thumb_failed_exc(self, path: str, _exc: BaseException) -> None:
        self._thumb_failed(path)

    def _thumb_failed(self, path: str) -> None:
        self._pending_thumbs.discard(path)
        self.failed.add(path)

    # --- full images ----------------------------------------------------------------------
    def image(self, path: str | None) -> QPixmap | None:
        """The cached full image as a pixmap, or None (then `prefetch` it or wait)."""
        if not path:
            return None
        cached = self._images.get_fresh(path)
        if isinstance(cached, QImage):
            pixmap = QPixmap.fromImage(cached)
            self._images.put(path, pixmap)
            return pixmap
        return cached  # type: ignore[return-value]

    def prefetch(self, path: str | None) -> None:
        """Decode a full image in the background so showing it later never waits on disk."""
        if not path or path in self.failed or path in self._images or path in self._pending_images:
            return
        self._pending_images.add(path)
        self._jobs.submit("image", partial(self._decode_full_job, path), on_result=partial(self._image_done, path),
                          on_error=partial(self._image_failed_exc, path), visible=False)

    def image_now(self, path: str) -> QPixmap | None:
        """Decode on the GUI thread: only when the user is waiting for exactly this image."""
        pixmap = self.image(path)
        if pixmap is not None:
            return pixmap
        image = self._decode_full(path)
        if isinstance(image, str):
            self.refused[path] = image
            self.failed.add(path)
            return None
        if image.isNull():
            self.failed.add(path)
            return None
        pixmap = QPixmap.fromImage(image)
        self._images.put(path, pixmap)
        return pixmap

    def _image_done(self, path: str, image: QImage | str) -> None:
        self._pending_images.discard(path)
        if isinstance(image, str):
            self.refused[path] = image
            self.failed.add(path)
            return
        if image.isNull():
            self.failed.add(path)
            return
        self._images.put(path, image)  # becomes a pixmap when first shown
        self.image_ready.emit(path)

    def _image_failed_exc(self, path: str, _exc: BaseException) -> None:
        self._image_failed(path)

    def _image_failed(self, path: str) -> None:
        self._pending_images.discard(path)
        self.failed.add(path)

    def is_pending(self, path: str) -> bool:
        return path in self._pending_images

"""Progress reporting and cooperative cancellation, with no Qt.

A long job receives a `Progress`; it calls `start`, `advance` and `check` (which raises
`Cancelled` once the token is set). The GUI polls `snapshot()` or passes `on_update`; the CLI
prints a text bar from the same callback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vital_desktop.core.errors import Cancelled


class CancelToken:
    """Set once by whoever wants the work to stop; checked by the worker between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


@dataclass(frozen=True)
class ProgressSnapshot:
    done: int
    total: int
    message: str
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return (self.done / self.total) if self.total else 0.0

    @property
    def rate(self) -> float | None:
        """Units done per second so far (None before the first unit)."""
        if self.done <= 0 or self.elapsed_s <= 0:
            return None
        return self.done / self.elapsed_s

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None until there is a rate, or with no total)."""
        rate = self.rate
        if rate is None or not self.total or self.done >= self.total:
            return None
        return (self.total - self.done) / rate


def format_eta(seconds: float | None) -> str:
    """'42 s', '3 min 5 s', '1 h 12 min' (or '' when unknown)."""
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class Progress:
    """Thread-safe progress counter with an optional cancel token and update callback.

    `on_update` is called at most every `min_interval_s` (and always on `finish`) so a tight
    loop does not flood the GUI or the terminal.
    """

    def __init__(
        self,
        *,
        cancel: CancelToken | None = None,
        on_update: Callable[[ProgressSnapshot], None] | None = None,
        min_interval_s: float = 0.05,
    ) -> None:
        self.cancel = cancel or CancelToken()
        self._on_update = on_update
        self._min_interval = min_interval_s
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        self._message = ""
        self._t0 = time.perf_counter()
        self._last_emit = 0.0

    def start(self, total: int, message: str = "") -> None:
        with self._lock:
            self._total = int(total)
            self._done = 0
            self._message = message
        self._emit(force=True)

    def advance(self, n: int = 1, message: str | None = None) -> None:
        with self._lock:
            self._done += int(n)
            if message is not None:
                self._message = message
        self._emit()

    def set(self, done: int, message: str | None = None) -> None:
        with self._lock:
            self._done = int(done)
            if message is not None:
                self._message = message
        self._emit()

    def finish(self, message: str | None = None) -> None:
        with self._lock:
            self._done = max(self._done, self._total)
            if message is not None:
                self._message = message
        self._emit(force=True)

    def check(self) -> None:
        """Raise `Cancelled` if the user asked to stop."""
        self.cancel.raise_if_cancelled()

    @property
    def cancelled(self) -> bool:
        return self.cancel.cancelled

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            return ProgressSnapshot(self._done, self._total, self._message, time.perf_counter() - self._t0)

    def _emit(self, force: bool = False) -> None:
        if self._on_update is None:
            return
        now = time.perf_counter()
        if not force and now - self._last_emit < self._min_interval:
            return
        self._last_emit = now
        self._on_update(self.snapshot())


def null_progress() -> Progress:
    """A progress object nobody watches (for callers that do not care)."""
    return Progress()

"""What every page gets: the store, the signed-in user, the job runner, and the change bus.

Pages never hold the main window (Anki's global `mw` is what STYLE.md warns about); they
ask the context to navigate, run jobs, and announce `Changes`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from vital_desktop.core.changes import Changes
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.store.db import Store
from vital_desktop.ui.images import ImageCache
from vital_desktop.ui.workers import Job, JobRunner


class AppContext(QObject):
    """Shared services of the desktop app; one per main window."""

    #: emitted with the `Changes` of every mutating service call; each page refreshes its part
    changed = Signal(object)
    #: ask the shell to show a stage (or "canonical"), with deep-link arguments
    navigate_requested = Signal(str, dict)
    #: a short message for the status bar
    status_message = Signal(str)

    def __init__(self, store: Store, user: User, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.user = user
        self.jobs = JobRunner(self)
        self.images = ImageCache(self.jobs, parent=self)

    def announce(self, changes: Changes) -> None:
        """Tell every page what a service call changed."""
        if changes is not None and changes.any():
            self.changed.emit(changes)

    def navigate(self, stage: str, **arguments: Any) -> None:
        self.navigate_requested.emit(stage, arguments)

    def say(self, message: str) -> None:
        self.status_message.emit(message)

    def run(
        self,
        title: str,
        fn: Callable[[Progress], Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        writes: bool = False,
        cancellable: bool = False,
        visible: bool = True,
    ) -> Job:
        """Run a service call in the background (see `JobRunner.submit`)."""
        return self.jobs.submit(title, fn, on_result=on_result, on_error=on_error, writes=writes,
                                cancellable=cancellable, visible=visible)

    def run_change(
        self,
        title: str,
        fn: Callable[[Progress], tuple[Any, Changes]],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        cancellable: bool = False,
    ) -> Job:
        """Run a mutating service call on the writer thread; announce its `Changes` when done."""

        def done(value: tuple[Any, Changes]) -> None:
            result, changes = value
            self.announce(changes)
            if on_result is not None:
                on_result(result)

        return self.run(title, fn, on_result=done, on_error=on_error, writes=True, cancellable=cancellable)

"""What every page gets: the signed-in user, store operations, the job runner, the change bus.

Pages never hold the main window (Anki's global `mw` is what STYLE.md warns about), and never
the store: they read through `query` and write through `change` (see `ui.operations`), which
run off the GUI thread and report what changed. They ask the context to navigate and announce.
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
from vital_desktop.ui.operations import ChangeFn, Operations, QueryFn
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
        self._store = store
        self.user = user
        #: where the site lives (for display only)
        self.site_path = store.path
        self.jobs = JobRunner(self)
        self.ops = Operations(store, user, self.jobs, self.announce)
        self.images = ImageCache(self.jobs, parent=self)

    @property
    def store(self) -> Store:
        """The open store, for the code that starts and stops the app and for tests. No module of
        ui/ uses it (tests/test_architecture.py): pages go through `query` / `change`."""
        return self._store

    def query(self, title: str, fn: QueryFn, *, on_result: Callable[[Any], None] | None = None,
              on_error: Callable[[BaseException], None] | None = None, key: str | None = None,
              owner: QObject | None = None, visible: bool = False, cancellable: bool = False) -> Job:
        """Read off the GUI thread: ``fn(op)`` gets an `OpEnv` (see `Operations.query`)."""
        return self.ops.query(title, fn, on_result=on_result, on_error=on_error, key=key, owner=owner,
                              visible=visible, cancellable=cancellable)

    def change(self, title: str, fn: ChangeFn, *, on_result: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None, owner: QObject | None = None,
               cancellable: bool = False, visible: bool = True, long: bool = False) -> Job:
        """Write on the writer thread; ``fn(op)`` returns ``(result, Changes)`` (see `Operations.change`)."""
        return self.ops.change(title, fn, on_result=on_result, on_error=on_error, owner=owner,
                               cancellable=cancellable, visible=visible, long=long)

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

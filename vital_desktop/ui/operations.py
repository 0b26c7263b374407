"""Store work for pages, off the GUI thread (Anki's `QueryOp` / `CollectionOp` shape).

A page never holds the store. It hands the context a function of an `OpEnv` (the store, the
acting user and the job's progress), which runs in a worker thread; the result comes back to a
callback in the GUI thread:

    context.query("templates", lambda op: templates.list_templates(op.store), on_result=self.show)
    context.change("Publishing", lambda op: templates.publish_template(op.store, actor=op.actor, ref=ref),
                   on_result=lambda info: ...)

- `query` runs on the compute pool (reads never wait behind the writer: `Store.read` takes no
  lock). A `key` makes it latest-wins: when a newer query with the same key was submitted, an
  older one's result is dropped instead of overwriting fresher data on screen.
- `change` runs on the single writer thread (so a user's saves keep their order) and expects
  ``(result, Changes)`` back; the `Changes` are announced to every page before `on_result`.
- `owner`: a widget whose deletion cancels the callbacks (a closed dialog never gets a result).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vital_desktop.core.changes import Changes
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User

if TYPE_CHECKING:
    from PySide6.QtCore import QObject

    from vital_desktop.store.db import Store
    from vital_desktop.ui.workers import Job, JobRunner


@dataclass(frozen=True)
class OpEnv:
    """What an operation gets, in its worker thread: the store, who acts, and its progress."""

    store: Store
    actor: User
    progress: Progress


QueryFn = Callable[[OpEnv], Any]
ChangeFn = Callable[[OpEnv], tuple[Any, Changes]]


def _alive(owner: QObject | None) -> bool:
    if owner is None:
        return True
    import shiboken6

    return bool(shiboken6.isValid(owner))


class Operations:
    """Runs page operations on the job runner; owns the store so pages do not."""

    def __init__(self, store: Store, user: User, jobs: JobRunner, announce: Callable[[Changes], None]) -> None:
        self._store = store
        self._user = user
        self._jobs = jobs
        self._announce = announce
        self._serial = itertools.count(1)
        self._latest: dict[str, int] = {}

    def _env(self, progress: Progress) -> OpEnv:
        return OpEnv(store=self._store, actor=self._user, progress=progress)

    def _guard(self, owner: QObject | None, key: str | None, serial: int,
               callback: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
        if callback is None:
            return None

        def deliver(value: Any) -> None:
            if key is not None and self._latest.get(key) != serial:
                return  # superseded by a newer query with the same key
            if _alive(owner):
                callback(value)

        return deliver

    def query(self, title: str, fn: QueryFn, *, on_result: Callable[[Any], None] | None = None,
              on_error: Callable[[BaseException], None] | None = None, key: str | None = None,
              owner: QObject | None = None, visible: bool = False, cancellable: bool = False) -> Job:
        """Run a read in the compute pool; `on_result(value)` runs in the GUI thread."""
        serial = next(self._serial)
        if key is not None:
            self._latest[key] = serial
        return self._jobs.submit(title, lambda progress: fn(self._env(progress)),
                                 on_result=self._guard(owner, key, serial, on_result),
                                 on_error=self._guard(owner, None, serial, on_error),
                                 writes=False, cancellable=cancellable, visible=visible)

    def change(self, title: str, fn: ChangeFn, *, on_result: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None, owner: QObject | None = None,
               cancellable: bool = False, visible: bool = True, long: bool = False) -> Job:
        """Run a write on the writer thread; announce its `Changes`, then `on_result(result)`.

        ``long=True`` (minutes of compute that write once at the end, e.g. a Monte Carlo run) runs
        in the compute pool instead, so it does not hold up the user's saves; the store's write
        lock still serialises its final write."""
        deliver = self._guard(owner, None, 0, on_result)

        def done(value: tuple[Any, Changes]) -> None:
            result, changes = value
            if changes is not None:
                self._announce(changes)
            if deliver is not None:
                deliver(result)

        return self._jobs.submit(title, lambda progress: fn(self._env(progress)), on_result=done,
                                 on_error=self._guard(owner, None, 0, on_error), writes=not long,
                                 cancellable=cancellable, visible=visible)

"""Store operations for the labeling pages: reads and writes off the GUI thread.

The pages hand a function of an environment (`store`, `actor`, `progress`) to `query` (a read on
the compute pool; with a `key`, only the latest result of that key is delivered) or `change` (a
write on the writer thread returning ``(result, Changes)``). These delegate to the context's
operation layer (`AppContext.query` / `AppContext.change`) when it has one, and otherwise run
the same functions through the context's job runner.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import QObject

from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.store.db import Store
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.workers import Job

_serial = itertools.count(1)
_latest: dict[tuple[int, str], int] = {}


@dataclass(frozen=True)
class Env:
    """What an operation gets in its worker thread."""

    store: Store
    actor: User
    progress: Progress


def _guard(context: AppContext, key: str | None, serial: int, owner: QObject | None,
           callback: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    if callback is None:
        return None

    def deliver(value: Any) -> None:
        if key is not None and _latest.get((id(context), key)) != serial:
            return  # a newer read of the same key was asked for meanwhile
        if owner is None or shiboken6.isValid(owner):
            callback(value)

    return deliver


def query(context: AppContext, title: str, fn: Callable[[Any], Any], *,
          on_result: Callable[[Any], None] | None = None, on_error: Callable[[BaseException], None] | None = None,
          key: str | None = None, owner: QObject | None = None) -> Job:
    """Read in the background; `on_result(value)` runs on the GUI thread (latest per `key`)."""
    if hasattr(context, "query"):
        return context.query(title, fn, on_result=on_result, on_error=on_error, key=key, owner=owner)
    serial = next(_serial)
    if key is not None:
        _latest[(id(context), key)] = serial
    store, actor = context.store, context.user
    return context.run(title, lambda progress: fn(Env(store, actor, progress)),
                       on_result=_guard(context, key, serial, owner, on_result),
                       on_error=_guard(context, None, serial, owner, on_error), visible=False)


def change(context: AppContext, title: str, fn: Callable[[Any], Any], *,
           on_result: Callable[[Any], None] | None = None, on_error: Callable[[BaseException], None] | None = None,
           owner: QObject | None = None) -> Job:
    """Write on the writer thread; ``fn`` returns ``(result, Changes)``; the changes are announced."""
    if hasattr(context, "change"):
        return context.change(title, fn, on_result=on_result, on_error=on_error, owner=owner)
    store, actor = context.store, context.user
    return context.run_change(title, lambda progress: fn(Env(store, actor, progress)),
                              on_result=_guard(context, None, 0, owner, on_result),
                              on_error=_guard(context, None, 0, owner, on_error))

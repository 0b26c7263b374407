"""Store operations for the labeling pages, through the context's operation layer.

The pages hand a function of an `OpEnv` (`store`, `actor`, `progress`) to `query` (a read on
the compute pool; with a `key`, only the latest result of that key is delivered) or `change` (a
write on the writer thread returning ``(result, Changes)``). Both are `AppContext.query` /
`AppContext.change` (ui/operations.py); the labeling pages never hold the store themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject

from vital_desktop.ui.context import AppContext
from vital_desktop.ui.operations import OpEnv
from vital_desktop.ui.workers import Job

#: what an operation's function gets (kept under its old name for the labeling modules)
Env = OpEnv


def query(context: AppContext, title: str, fn: Callable[[OpEnv], Any], *,
          on_result: Callable[[Any], None] | None = None, on_error: Callable[[BaseException], None] | None = None,
          key: str | None = None, owner: QObject | None = None) -> Job:
    """Read in the background; `on_result(value)` runs on the GUI thread (latest per `key`)."""
    return context.query(title, fn, on_result=on_result, on_error=on_error, key=key, owner=owner)


def change(context: AppContext, title: str, fn: Callable[[OpEnv], Any], *,
           on_result: Callable[[Any], None] | None = None, on_error: Callable[[BaseException], None] | None = None,
           owner: QObject | None = None) -> Job:
    """Write on the writer thread; ``fn`` returns ``(result, Changes)``; the changes are announced."""
    return context.change(title, fn, on_result=on_result, on_error=on_error, owner=owner)

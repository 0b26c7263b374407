"""Undo and redo of label actions, as a QUndoStack of commands that call the label service.

What "undo" means is defined honestly by the store's rules (history is never rewritten):

- undo of a save that *created* a label withdraws it (the item is unlabeled again; the history
  keeps a 'withdraw' row); redo saves the same content again as a new label;
- undo of a save that *updated* a label, or of a rollback, is a rollback to the version before
  it (a new version with the old content); redo is a rollback to the version it had made.

The save itself happened before the command is pushed (the store is the truth), so the first
`redo()` does nothing. QUndoStack's API is synchronous, but the store work is not done on the
GUI thread: `undo()`/`redo()` hand it to the writer thread and report back through
`on_applied(key)` (or `on_error(key, exc)`); the tool blocks further undo/redo meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QUndoCommand

from vital_desktop.core.changes import Changes
from vital_desktop.services import labels as label_service
from vital_desktop.ui import label_ops
from vital_desktop.ui.context import AppContext


@dataclass(frozen=True)
class LabelKey:
    sheet: str
    item_ref: str
    label_type: str


class LabelActionCommand(QUndoCommand):
    """A saved label action (save or rollback) that can be undone and redone."""

    def __init__(self, context: AppContext, key: LabelKey, *, before_version: int | None, after_version: int,
                 after_data: dict, text: str, on_applied: Callable[[LabelKey], None],
                 on_error: Callable[[LabelKey, BaseException], None] | None = None) -> None:
        super().__init__(text)
        self.context = context
        self.key = key
        self.before_version = before_version
        self.after_version = after_version
        self.after_data = after_data
        self.on_applied = on_applied
        self.on_error = on_error
        self._first_redo = True
        self.error: BaseException | None = None

    def redo(self) -> None:
        if self._first_redo:
            self._first_redo = False
            return
        self._apply("Redo", self._redo)

    def undo(self) -> None:
        self._apply("Undo", self._undo)

    def _apply(self, title: str, fn: Callable[[Any, Any, str], None]) -> None:
        self.error = None
        text = self.text()  # read here: the worker thread never touches the command

        def failed(exc: BaseException) -> None:
            self.error = exc
            if self.on_error is not None:
                self.on_error(self.key, exc)

        def work(op: Any) -> tuple[None, Changes]:
            fn(op.store, op.actor, text)
            return None, Changes(labels=True)

        label_ops.change(self.context, f"{title} {text}", work, on_result=lambda _r: self.on_applied(self.key),
                         on_error=failed)

    def _undo(self, store: Any, actor: Any, text: str) -> None:
        key = self.key
        if self.before_version is None:
            label_service.withdraw_label(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref,
                                         label_type=key.label_type, reason=f"undo: {text}")
            return
        label_service.rollback(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref, label_type=key.label_type,
                               to_version=self.before_version, reason=f"undo: {text}")

    def _redo(self, store: Any, actor: Any, text: str) -> None:
        key = self.key
        current = label_service.get_label(store, sheet=key.sheet, item_ref=key.item_ref, label_type=key.label_type)
        if current is None:  # withdrawn by the undo: save the same content again
            label_service.set_label(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref,
                                    label_type=key.label_type, label_data=self.after_data, reason="redo")
            return
        label_service.rollback(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref, label_type=key.label_type,
                               to_version=self.after_version, reason=f"redo: {text}")

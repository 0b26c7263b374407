"""Undo and redo of label actions, as a QUndoStack of commands that call the label service.

What "undo" means is defined honestly by the store's rules (history is never rewritten):

- undo of a save that *created* a label withdraws it (the item is unlabeled again; the history
  keeps a 'withdraw' row); redo saves the same content again as a new label;
- undo of a save that *updated* a label, or of a rollback, is a rollback to the version before
  it (a new version with the old content); redo is a rollback to the version it had made.

The save itself happened before the command is pushed (the store is the truth, and the UI
moved on only after it returned), so the first `redo()` does nothing. These calls are short
single-row writes; QUndoStack's API is synchronous, so they run on the GUI thread, serialised
by the store's write lock with the writer thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QUndoCommand

from vital_desktop.core.changes import Changes
from vital_desktop.services import labels as label_service
from vital_desktop.ui.context import AppContext


@dataclass(frozen=True)
class LabelKey:
    sheet: str
    item_ref: str
    label_type: str


class LabelActionCommand(QUndoCommand):
    """A saved label action (save or rollback) that can be undone and redone."""

    def __init__(self, context: AppContext, key: LabelKey, *, before_version: int | None, after_version: int,
                 after_data: dict, text: str, on_applied: Callable[[LabelKey], None]) -> None:
        super().__init__(text)
        self.context = context
        self.key = key
        self.before_version = before_version
        self.after_version = after_version
        self.after_data = after_data
        self.on_applied = on_applied
        self._first_redo = True
        self.error: BaseException | None = None

    def redo(self) -> None:
        if self._first_redo:
            self._first_redo = False
            return
        self._apply(self._redo)

    def undo(self) -> None:
        self._apply(self._undo)

    def _apply(self, fn: Callable[[], None]) -> None:
        self.error = None
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - shown by the tool; the stack stays consistent with the store
            self.error = exc
            self.setObsolete(True)
        self.context.announce(Changes(labels=True))
        self.on_applied(self.key)

    def _current_version(self) -> int | None:
        label = label_service.get_label(self.context.store, sheet=self.key.sheet, item_ref=self.key.item_ref,
                                        label_type=self.key.label_type)
        return label.version if label else None

    def _undo(self) -> None:
        store, actor, key = self.context.store, self.context.user, self.key
        if self.before_version is None:
            label_service.withdraw_label(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref,
                                         label_type=key.label_type, reason=f"undo: {self.text()}")
            return
        label_service.rollback(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref, label_type=key.label_type,
                               to_version=self.before_version,
                               reason=f"undo: {self.text()}")

    def _redo(self) -> None:
        store, actor, key = self.context.store, self.context.user, self.key
        if self._current_version() is None:  # withdrawn by the undo: save the same content again
            label_service.set_label(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref,
                                    label_type=key.label_type, label_data=self.after_data, reason="redo")
            return
        label_service.rollback(store, actor=actor, sheet=key.sheet, item_ref=key.item_ref, label_type=key.label_type,
                               to_version=self.after_version, reason=f"redo: {self.text()}")

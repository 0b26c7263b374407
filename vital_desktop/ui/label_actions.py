"""What the Canonical Labeling Tool does to the store: save, claim, roll back, undo and redo.

The acting part of `CanonicalLabelingTool` (the page shows and navigates; this part acts). Every write
goes through `label_ops.change` on the single store-writer thread, so saves land in the order
they were made while the expert already looks at the next item; nothing here waits on the disk.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import Qt

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.geometry import check_shapes
from vital_desktop.services import content_review
from vital_desktop.services import labels as label_service
from vital_desktop.services import review as review_service
from vital_desktop.services.content_review import CONTENT_CHANGED
from vital_desktop.services.labels import LabelInfo
from vital_desktop.ui import label_ops, theme
from vital_desktop.ui.label_commands import LabelActionCommand, LabelKey
from vital_desktop.ui.label_side_panel import summarize
from vital_desktop.ui.shape_model import DIGIT_KEYS
from vital_desktop.ui.widgets import show_error

if TYPE_CHECKING:
    from vital_desktop.ui.labeling_tool import CanonicalLabelingTool

#: How many items "Claim next" reserves at once.
CLAIM_BATCH = 20


class LabelActions:
    """Save and next, claims, rollback, undo/redo of one labeling tool."""

    def __init__(self, tool: CanonicalLabelingTool) -> None:
        self.tool = tool

    def claim_next(self) -> None:
        """Claim the next unlabeled items of this sheet and label type for this expert."""
        if self.tool.sheet is None:
            return
        sheet, label_type = self.tool.sheet.name, self.tool.label_type

        def done(claimed: review_service.ClaimResult) -> None:
            if claimed.claimed:
                until = (claimed.expires_at or "")[11:16]
                self.tool.context.say(f"Claimed {len(claimed.claimed)} items ({claimed.claimed[0]} …) until {until} UTC; "
                                 "other experts cannot label them meanwhile.")
                self.tool.message.setText(f"Claimed {len(claimed.claimed)} items until {until} UTC.")
            else:
                self.tool.message.setText("Nothing to claim: every item is labeled or held by someone else.")

        label_ops.change(self.tool.context, f"Claiming {CLAIM_BATCH} items", lambda op: review_service.claim_items(
            op.store, actor=op.actor, sheet=sheet, label_type=label_type, count=CLAIM_BATCH), on_result=done,
            on_error=lambda exc: show_error(self.tool, "Claim items", exc), owner=self.tool)

    @property
    def saving(self) -> bool:
        """True while a save is on its way to the store."""
        return bool(self.tool.pending_saves)

    def save_and_next(self) -> None:
        """Save the form as the item's label and move on to the next unlabeled item at once.

        Enter with an open polygon closes it instead. The save runs on the single store-writer
        thread while the expert already sees the next image. If a save is refused, the tool says
        why and returns to that item. A crash in the few milliseconds a save is in flight loses
        at most that label, the one just typed.
        """
        if self.tool.form is None or self.tool.item is None or self.tool.sheet is None:
            return
        if self.tool.item.item_ref in self.tool.pending_saves:
            return  # its previous save is still on its way; the version must be known first
        shapes = self.tool.form.shape_model
        if shapes is not None and shapes.drawing:
            if not shapes.close_polygon():
                self.tool._refuse("A polygon needs at least 3 vertices: click to add more, or Esc to drop it.")
            return
        if not self.tool.labels_ready:  # Enter came before the label: save as soon as its version is known
            self.tool.save_when_ready = True
            return
        missing = self.tool.form.missing_required()
        if missing:
            keys = "number keys" if len(self.tool.form.classes) <= len(DIGIT_KEYS) else "number keys, or type to filter"
            self.tool._refuse(f"Choose {', '.join(missing)} first ({keys}).")
            return
        if shapes is not None and not self._shapes_fit():
            return
        allowed, prohibited, reason = self.tool.usage.value()
        key = LabelKey(self.tool.sheet.name, self.tool.item.item_ref, self.tool.label_type)
        before = self.tool.current_label.version if self.tool.current_label else None
        arguments: dict[str, Any] = {"sheet": key.sheet, "item_ref": key.item_ref, "label_type": key.label_type,
                     "label_data": self.tool.form.value(), "allowed_uses": allowed, "prohibited_uses": prohibited,
                     "usage_reason": reason, "confidence": self.tool.side.confidence(),
                     "notes": self.tool.notes.text().strip(), "expected_version": before}
        previous_status = self.tool.model.statuses.get(key.item_ref, "unlabeled") if self.tool.model is not None else ""
        self.tool.pending_saves[key.item_ref] = previous_status
        self.tool.save_started = time.perf_counter()
        label_ops.change(self.tool.context, f"Saving {key.item_ref}",
                         lambda op: review_service.label_item(op.store, actor=op.actor, **arguments),
                         on_result=lambda result: self._saved(key, before, result),
                         on_error=lambda exc: self._save_failed(key, exc))
        if self.tool.model is not None:
            self.tool.model.update_status(key.item_ref, "labeled")  # optimistic; corrected when the save returns
        self.tool._update_progress()
        self.tool.image_view.setFocus()  # the next key (a digit, Enter) belongs to the item, not to a text field
        following = self.tool._next_unlabeled(self.tool.position if self.tool.position is not None else -1)
        if following is None:
            self.tool.message.setText(f"<span style='color:{theme.SUCCESS}'>Every item has a "
                                 f"{self.tool._type_title(self.tool.label_type)} label.</span>")
            return
        self.tool.show_position(following)

    def _shapes_fit(self) -> bool:
        """Every shape inside the image (core/geometry); else say which, and do not save."""
        assert self.tool.item is not None and self.tool.form is not None
        size = self.tool.image_view.image_size()
        try:
            if size is None:
                raise ValidationError(f"item {self.tool.item.item_ref}: no image to check the shapes against")
            check_shapes(self.tool.form.value(), size[0], size[1], where=f"item {self.tool.item.item_ref}")
        except ValidationError as exc:
            self.tool._refuse(f"Not saved: {exc}")
            return False
        return True

    def _saved(self, key: LabelKey, before: int | None,
               result: label_service.SetLabelResult) -> None:
        self.tool.pending_saves.pop(key.item_ref, None)
        if result.outcome in ("created", "updated"):
            self.tool.undo_stack.push(self._command(key, before, result.label.version, result.label.label_data,
                                               f"label {key.item_ref} = {summarize(result.label.label_data)}"))
        status = "conflict" if result.label.review_state == "conflict" else "labeled"
        if self.tool.model is not None:
            self.tool.model.update_status(key.item_ref, status)
        self.tool._update_progress()
        if result.outcome == "conflict":
            self.tool.context.say(f"{key.item_ref}: someone else changed this label; your version is kept as a conflict "
                             "for review.")
        else:
            self.tool.context.say(f"Saved {key.item_ref} ({result.outcome}, v{result.label.version}).")
        if self.tool.item is not None and self.tool.item.item_ref == key.item_ref:
            self.tool._request_labels()  # the expert came back to it while it was saving: show it as stored

    def _save_failed(self, key: LabelKey, exc: BaseException) -> None:
        previous_status = self.tool.pending_saves.pop(key.item_ref, "unlabeled")
        if self.tool.model is not None:
            self.tool.model.update_status(key.item_ref, previous_status)
        self.tool._update_progress()
        self.tool.open_item(key.item_ref)
        self.tool.message.setText(f"<span style='color:{theme.DANGER}'>Not saved: {key.item_ref}: {exc}</span>")
        show_error(self.tool, "Save label", exc)

    def _command(self, key: LabelKey, before: int | None, after: int, data: dict,
                 text: str) -> LabelActionCommand:
        return LabelActionCommand(self.tool.context, key, before_version=before, after_version=after, after_data=data,
                                  text=text, on_applied=self._after_undo_redo, on_error=self._undo_failed)

    def rollback_selected(self) -> None:
        entry = self.tool.history.currentItem()
        if entry is None or self.tool.sheet is None or self.tool.item is None or self.tool.current_label is None:
            self.tool.message.setText("Select a version in the history first.")
            return
        version = entry.data(Qt.ItemDataRole.UserRole)
        key = LabelKey(self.tool.sheet.name, self.tool.item.item_ref, self.tool.label_type)
        before = self.tool.current_label.version

        def done(info: LabelInfo) -> None:
            self.tool.undo_stack.push(self._command(key, before, info.version, info.label_data,
                                               f"roll back {key.item_ref} to v{version}"))
            self._after_undo_redo(key)

        label_ops.change(self.tool.context, f"Rolling back {key.item_ref}", lambda op: label_service.rollback(
            op.store, actor=op.actor, sheet=key.sheet, item_ref=key.item_ref, label_type=key.label_type,
            to_version=version), on_result=done, on_error=lambda exc: show_error(self.tool, "Roll back", exc), owner=self.tool)

    def confirm_unchanged(self) -> None:
        """Ctrl+K: the label still holds for the item's changed image — a new version with the same
        content through the write path (services/content_review); a label changed by someone since
        the version shown becomes a conflict."""
        tool = self.tool
        label = tool.current_label
        if tool.sheet is None or tool.item is None or label is None or label.review_state != CONTENT_CHANGED:
            tool.message.setText("Only a label whose image changed since it was made needs confirming.")
            return
        key = LabelKey(tool.sheet.name, tool.item.item_ref, tool.label_type)
        seen = label.version

        def done(outcome: content_review.ConfirmOutcome) -> None:
            self._after_undo_redo(key)  # show the label as stored now
            text = (f"{key.item_ref}: someone changed this label meanwhile; recorded as a conflict to resolve."
                    if outcome.conflicts else f"{key.item_ref}: the label holds for the new image (v{seen + 1}).")
            tool.context.say(text)  # the status bar: the side panel's message is reset as the label reloads
            tool.image_view.setFocus()

        label_ops.change(tool.context, f"Confirming {key.item_ref}", lambda op: content_review.confirm_unchanged(
            op.store, actor=op.actor, sheet=key.sheet, label_type=key.label_type, item_refs=[key.item_ref],
            expected_versions={key.item_ref: seen}), on_result=done,
            on_error=lambda exc: show_error(tool, "Confirm label", exc), owner=tool)

    def _undo_text_changed(self, text: str) -> None:
        if shiboken6.isValid(self.tool.undo_button):  # the stack emits while the page is being destroyed
            self.tool.undo_button.setToolTip(f"Undo {text} (Ctrl+Z)")

    def _redo_text_changed(self, text: str) -> None:
        if shiboken6.isValid(self.tool.redo_button):
            self.tool.redo_button.setToolTip(f"Redo {text} (Ctrl+Shift+Z)")

    def undo(self) -> None:
        """Ctrl+Z: the last shape edit of this item if there is one, else the last saved label action."""
        shapes = self.tool.form.shape_model if self.tool.form is not None else None
        if shapes is not None and shapes.undo_stack.canUndo():
            shapes.undo_stack.undo()
            self.tool.touched = True
            return
        self._undo_redo(self.tool.undo_stack.undo, self.tool.undo_stack.command(self.tool.undo_stack.index() - 1))

    def redo(self) -> None:
        shapes = self.tool.form.shape_model if self.tool.form is not None else None
        if shapes is not None and shapes.undo_stack.canRedo():
            shapes.undo_stack.redo()
            self.tool.touched = True
            return
        self._undo_redo(self.tool.undo_stack.redo, self.tool.undo_stack.command(self.tool.undo_stack.index()))

    def _undo_redo(self, step: Any, command: Any) -> None:
        if self.saving or self.tool.undoing or command is None:
            return
        self.tool.undoing = True
        step()

    def _undo_failed(self, key: LabelKey, exc: BaseException) -> None:
        self.tool.undoing = False
        show_error(self.tool, "Undo", exc)
        self._after_undo_redo(key)

    def _after_undo_redo(self, key: LabelKey) -> None:
        """After an undo/redo/rollback: show the item it touched with its label as stored now."""
        self.tool.undoing = False
        if self.tool.sheet is None or self.tool.model is None or key.sheet != self.tool.sheet.name:
            return
        if key.label_type != self.tool.label_type:
            self.tool.set_label_type(key.label_type, item=key.item_ref)
            return

        def stored(label: LabelInfo | None) -> None:
            if self.tool.model is None or self.tool.label_type != key.label_type:
                return
            status = "unlabeled" if label is None else ("conflict" if label.review_state == "conflict" else "labeled")
            self.tool.model.update_status(key.item_ref, status)
            self.tool._update_progress()
            self.tool.open_item(key.item_ref)

        label_ops.query(self.tool.context, "label", lambda op: label_service.get_label(
            op.store, sheet=key.sheet, item_ref=key.item_ref, label_type=key.label_type), on_result=stored,
            owner=self.tool)

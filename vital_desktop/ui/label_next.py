"""The GUI hook for "Label next": ask the classifier which unlabelled items teach it most.

`suggest_next` runs `services.assist.label_next` as a background job (off the GUI thread, with
progress and cancel) and hands the ranked items to a callback on the GUI thread; the labeling
tool opens the first and keeps the rest as its queue. The ordering is the active classifier's
uncertainty mixed with diversity (or plain diversity, or random) — see `inference.assist`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vital_desktop.services import assist
from vital_desktop.ui.context import AppContext

if TYPE_CHECKING:
    from vital_desktop.ui.labeling_tool import CanonicalLabelingTool


def suggest_next(
    context: AppContext, *, sheet: str, label_type: str, on_items: Callable[[list[assist.NextItem]], None],
    strategy: str = "uncertainty", count: int = 20,
    on_error: Callable[[BaseException], None] | None = None,
) -> Any:
    """Start the job; `on_items` receives the items to label next, best first (empty: all labelled)."""
    return context.query(
        "Choosing what to label next",
        lambda op: assist.label_next(op.store, actor=op.actor, sheet=sheet, label_type=label_type, strategy=strategy,
                                     count=count, progress=op.progress),
        on_result=on_items, on_error=on_error, visible=True, cancellable=True,
    )


def suggest_for_tool(tool: CanonicalLabelingTool) -> None:
    """The labeling tool's "Label next": fill its queue with the suggested items and open the first
    (a result for another sheet or label type than the one now shown is dropped)."""
    if tool.sheet is None:
        return
    sheet, label_type = tool.sheet.name, tool.label_type

    def arrived(items: list[assist.NextItem]) -> None:
        if tool.sheet is None or tool.sheet.name != sheet or tool.label_type != label_type:
            return
        tool.queue = [item.item_ref for item in items]
        if not tool.queue:
            tool.message.setText("Nothing to suggest: every item has a label.")
            return
        tool.message.setText(f"{len(tool.queue)} items to label next, most informative first (Enter moves "
                             "through them).")
        tool.open_item(tool.queue[0])
        tool.image_view.setFocus()

    suggest_next(tool.context, sheet=sheet, label_type=label_type, on_items=arrived,
                 on_error=lambda exc: tool._refuse(f"No suggestions: {exc}"))

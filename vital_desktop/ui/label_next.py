"""The GUI hook for "Label next": ask the classifier which unlabelled items teach it most.

`suggest_next` runs `services.assist.label_next` as a background job (off the GUI thread, with
progress and cancel) and hands the ranked items to a callback on the GUI thread; the labeling
tool opens the first and keeps the rest as its queue. The ordering is the active classifier's
uncertainty mixed with diversity (or plain diversity, or random) — see `inference.assist`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vital_desktop.services import assist
from vital_desktop.ui.context import AppContext


def suggest_next(
    context: AppContext, *, sheet: str, on_items: Callable[[list[assist.NextItem]], None],
    label_type: str = "classification", strategy: str = "uncertainty", count: int = 20,
    on_error: Callable[[BaseException], None] | None = None,
) -> Any:
    """Start the job; `on_items` receives the items to label next, best first (empty: all labelled)."""
    return context.query(
        "Choosing what to label next",
        lambda op: assist.label_next(op.store, actor=op.actor, sheet=sheet, label_type=label_type, strategy=strategy,
                                     count=count, progress=op.progress),
        on_result=on_items, on_error=on_error, visible=True, cancellable=True,
    )

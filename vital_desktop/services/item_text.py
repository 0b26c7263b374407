"""What a language model and a reviewer read of a document or telemetry item.

At import, each item's metadata gets the prompt variables of its kind (`ITEM_KINDS[..].
prompt_variable`): ``document_text`` (the extracted text, cut to `PROMPT_CHARS` so prompt and
answer fit the embedded model's context) or ``telemetry_summary`` (a few lines of per-channel
statistics). A template names them as ``{{document_text}}`` / ``{{telemetry_summary}}`` like any
column, so generation, evaluation and optimisation render them with no extra step. The full
text and the plot series stay in `item_contents` for the LABEL views (`item_content`).

`evidence_text(kind, metadata)` is the same content as one block of text, for prompt code that
adds evidence beside the user prompt (as it adds the classifier's summary for images).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from vital_desktop.core.errors import NotFoundError
from vital_desktop.services.item_kinds import DOCUMENT, TELEMETRY, item_kind
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store.db import Store
from vital_desktop.store.models import ItemContent, SheetItem

#: Characters of a document's text given to the language model (the embedded model's context is
#: 2,048 tokens; about 3,000 characters of English leave room for the instructions and the answer).
PROMPT_CHARS = 3000


def document_prompt_text(text: str, *, limit: int = PROMPT_CHARS) -> str:
    """The document's text for a prompt: whitespace runs collapsed, cut at `limit` with a marker."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    compact = "\n".join(line for line in lines if line)
    if len(compact) <= limit:
        return compact
    cut = compact[:limit].rsplit(" ", 1)[0]
    return cut + f" […] (first {len(cut):,} of {len(compact):,} characters)"


def telemetry_prompt_text(summary: dict[str, Any], fields: dict[str, Any] | None = None) -> str:
    """A telemetry item's summary as a few short lines a language model can read."""
    parts = [f"{summary['points']} readings"]
    if summary.get("time_range"):
        start, end = summary["time_range"]
        parts.append(f"from {start} to {end}")
    lines = [" ".join(parts) + "."]
    if fields:
        lines.append("Fields: " + ", ".join(f"{k}={v}" for k, v in fields.items()) + ".")
    for channel in summary.get("channels", []):
        if not channel.get("count"):
            lines.append(f"{channel['name']}: no values.")
            continue
        lines.append(
            f"{channel['name']}: first {_num(channel['first'])}, last {_num(channel['last'])}, min {_num(channel['min'])}, "
            f"max {_num(channel['max'])}, mean {_num(channel['mean'])}, std {_num(channel['std'])}, "
            f"trend {_num(channel['trend_per_step'])} per reading.")
    return "\n".join(lines)


def _num(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.4g}"


def evidence_text(kind: str | None, metadata: dict[str, Any]) -> str | None:
    """The item's content as one text block for a prompt (None for images: they have no text)."""
    variable = item_kind(kind).prompt_variable
    if variable is None or not metadata.get(variable):
        return None
    label = {DOCUMENT: "Document text", TELEMETRY: "Telemetry summary"}.get(item_kind(kind).name, "Content")
    return f"{label}:\n{metadata[variable]}"


@dataclass(frozen=True)
class ItemContentInfo:
    """What the LABEL views show beside the answer for a non-image item."""

    sheet: str
    item_ref: str
    kind: str
    view: str
    text: str | None
    series: dict[str, Any] | None
    metadata: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def item_content(store: Store, sheet: str, item_ref: str) -> ItemContentInfo:
    """The stored text or series of one item (no file is read), with its metadata."""
    with store.read() as s:
        row = find_sheet(s, sheet)
        item = s.scalar(sa.select(SheetItem).where(SheetItem.sheet_id == row.id, SheetItem.item_ref == item_ref))
        if item is None:
            raise NotFoundError(f"sheet {row.name!r} has no item {item_ref!r}")
        content = s.get(ItemContent, (row.id, item_ref))
        kind = item_kind(row.item_kind)
        return ItemContentInfo(row.name, item_ref, kind.name, kind.view, content.text if content else None,
                               content.series if content else None, dict(item.item_metadata or {}))

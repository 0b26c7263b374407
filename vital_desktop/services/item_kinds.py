"""The kinds of items a sheet can hold: images, documents and telemetry series.

One registry entry per kind says what its items show in DATA (the sheet's columns), what the
LABEL views put beside the answer (``view``: an image, the document text, a plot), and whether a
language model needs image evidence to pre-label it. Code looks kinds up here instead of
branching on them; the UI keeps its own registry of view widgets keyed by ``view``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vital_desktop.core.errors import ValidationError


@dataclass(frozen=True)
class ItemKind:
    name: str
    title: str
    #: what the LABEL views show beside the answer: "image", "text" or "plot"
    view: str
    #: sheet columns every item of this kind provides (shown in DATA, usable as {{placeholders}})
    columns: tuple[str, ...]
    #: a text-only model cannot pre-label these items from their metadata alone
    needs_image_evidence: bool
    #: the prompt variable carrying the item's content for a language model (None: metadata only)
    prompt_variable: str | None = None


IMAGE = "image"
DOCUMENT = "document"
TELEMETRY = "telemetry"

DOCUMENT_COLUMNS = ("item_kind", "file_name", "format", "file_size", "pages", "chars", "warnings", "truncated",
                    "document_text")
TELEMETRY_COLUMNS = ("item_kind", "file_name", "points", "channels", "time_start", "time_end",
                     "telemetry_summary")

ITEM_KINDS: dict[str, ItemKind] = {
    IMAGE: ItemKind(IMAGE, "Images", "image", (), needs_image_evidence=True),
    DOCUMENT: ItemKind(DOCUMENT, "Documents (PDF, text, Markdown)", "text", DOCUMENT_COLUMNS,
                       needs_image_evidence=False, prompt_variable="document_text"),
    TELEMETRY: ItemKind(TELEMETRY, "Telemetry series (CSV/Parquet)", "plot", TELEMETRY_COLUMNS,
                        needs_image_evidence=False, prompt_variable="telemetry_summary"),
}


def item_kind(name: str | None) -> ItemKind:
    """The registry entry of a kind (a sheet made before kinds existed holds images)."""
    found = ITEM_KINDS.get(name or IMAGE)
    if found is None:
        raise ValidationError(f"unknown item kind {name!r}; use {', '.join(ITEM_KINDS)}")
    return found


def kind_of_sheet(sheet: object) -> ItemKind:
    """The kind of a sheet's items, from any object with the store Sheet's `item_kind`."""
    return item_kind(getattr(sheet, "item_kind", None))

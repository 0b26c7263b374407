"""Erasure on request (admins): items, or a whole sheet, removed with every trace of content.

Removed: the items' canonical labels with every history version, label conflicts and claims
(through `labels.erase_labels`, the label module's own function), the Q&A pairs made from
them in every training sheet, their predictions and feedback, and the index rows. The image
files are not touched (the site owns them). Model lineage forgets the erased entries, and
every model that learnt from them is marked ``trained on erased data — retrain`` in
`models.retrain_reason`. The audit log records who, when, how many and why — never refs or
content. Everything happens in one transaction: a refused erasure changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import utcnow
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.bulk import raw_connection
from vital_desktop.store.db import Store
from vital_desktop.store.models import ModelRow, ModelTrainingLineage, Sheet, SheetItem, TrainingSheet

RETRAIN_REASON = "trained on erased data — retrain"
MAX_NAMED = 20


@dataclass(frozen=True)
class ErasureReport:
    sheet: str
    items: int
    labels: int
    label_versions: int
    qa_pairs: int
    predictions: int
    feedback: int
    sheet_deleted: bool = False
    models_flagged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        what = "deleted sheet" if self.sheet_deleted else "erased from"
        flagged = f"; models to retrain: {', '.join(self.models_flagged)}" if self.models_flagged else ""
        return (f"{what} {self.sheet!r}: {self.items} item(s), {self.labels} label(s) with {self.label_versions} "
                f"version(s), {self.qa_pairs} Q&A pair(s), {self.predictions} prediction(s), {self.feedback} "
                f"feedback item(s){flagged}. Image files were not touched.")


def _delete(raw, sql: str, params: list) -> int:
    row = raw.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _erase(session, actor: User, sheet_row: Sheet, refs: list[str] | None, reason: str) -> ErasureReport:
    from vital_desktop.services import labels

    raw = raw_connection(session)
    session.flush()
    sheet_id = sheet_row.id
    scope, params = "sheet_id = ?", [sheet_id]
    if refs is not None:
        raw.register("_erase_items", pa.table({"item_ref": refs}))
        scope += " AND item_ref IN (SELECT item_ref FROM _erase_items)"
    try:
        erased = labels.erase_labels(session, sheet_id=sheet_id, item_refs=refs)
        training_ids = [t for t in session.scalars(sa.select(TrainingSheet.id).where(TrainingSheet.sheet_id == sheet_id))]
        pair_ids: set[str] = set()
        pairs = 0
        if training_ids:
            pair_scope = "training_sheet_id IN (SELECT unnest(?::VARCHAR[]))" + (
                " AND item_ref IN (SELECT item_ref FROM _erase_items)" if refs is not None else "")
            pair_ids = {r[0] for r in raw.execute(f"SELECT id FROM qa_pairs WHERE {pair_scope}",
                                                  [training_ids]).fetchall()}
            pairs = _delete(raw, f"DELETE FROM qa_pairs WHERE {pair_scope}", [training_ids])
        predictions = _delete(raw, f"DELETE FROM predictions WHERE {scope}", params)
        feedback = _delete(raw, f"DELETE FROM feedback_items WHERE {scope}", params)
        _delete(raw, f"DELETE FROM item_contents WHERE {scope}", params)  # document text, telemetry series
        items = _delete(raw, f"DELETE FROM sheet_items WHERE {scope}", params)
    finally:
        if refs is not None:
            raw.unregister("_erase_items")
    flagged = _flag_models(session, sheet_id, set(refs) if refs is not None else None, set(erased.label_ids), pair_ids)
    return ErasureReport(sheet_row.name, items, erased.labels, erased.versions, pairs, predictions, feedback,
                         models_flagged=flagged)


def _flag_models(session, sheet_id: str, refs: set[str] | None, label_ids: set[str], pair_ids: set[str]) -> list[str]:
    """Drop erased entries from model lineage and mark the models that learnt from them."""
    flagged_ids: set[str] = set()
    for lineage in session.scalars(sa.select(ModelTrainingLineage)):
        entries = list(lineage.canonical_labels or [])
        kept = [e for e in entries if not (
            e.get("id") in label_ids or (lineage.sheet_id == sheet_id and (refs is None or e.get("item_ref") in refs)))]
        pairs = list(lineage.qa_pair_ids or [])
        kept_pairs = [p for p in pairs if p not in pair_ids]
        if len(kept) != len(entries) or len(kept_pairs) != len(pairs):
            lineage.canonical_labels = kept
            lineage.qa_pair_ids = kept_pairs
            flagged_ids.add(lineage.model_id)
    if not flagged_ids:
        return []
    session.flush()
    session.execute(sa.update(ModelRow).where(ModelRow.id.in_(flagged_ids)).values(retrain_reason=RETRAIN_REASON))
    return sorted(f"{n}@{v}" for n, v in session.execute(
        sa.select(ModelRow.name, ModelRow.version).where(ModelRow.id.in_(flagged_ids))))


def _check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("an erasure needs a reason (--reason), kept in the audit log")
    return reason


def erase_items(store: Store, *, actor: User, sheet: str, item_refs: Iterable[str], reason: str) -> tuple[
        ErasureReport, Changes]:
    """Erase these items of a sheet (see the module docstring). Unknown items are refused, named."""
    from vital_desktop.services.sheets import find_sheet

    require(actor, "erase_data")
    reason = _check_reason(reason)
    refs = list(dict.fromkeys(r.strip() for r in item_refs if r and r.strip()))
    if not refs:
        raise ValidationError("name the items to erase (--items A,B)")
    with store.session() as s:
        row = find_sheet(s, sheet)
        known = set(s.scalars(sa.select(SheetItem.item_ref).where(SheetItem.sheet_id == row.id,
                                                                  SheetItem.item_ref.in_(refs))))
        unknown = [r for r in refs if r not in known]
        if unknown:
            raise ValidationError(f"sheet {row.name!r} has no item(s) {', '.join(unknown[:MAX_NAMED])}"
                                  + (f" (and {len(unknown) - MAX_NAMED} more)" if len(unknown) > MAX_NAMED else ""))
        report = _erase(s, actor, row, refs, reason)
        total, missing = raw_connection(s).execute(
            "SELECT count(*), count(*) FILTER (WHERE missing) FROM sheet_items WHERE sheet_id = ?", [row.id]).fetchone()
        s.execute(sa.update(Sheet).where(Sheet.id == row.id).values(item_count=int(total), missing_count=int(missing)))
        audit.record(s, actor, "sheet.erase_items", row.name, _audit_details(report, reason))
    return report, Changes(sheets=True, labels=True, pairs=True, predictions=True, feedback=True,
                           models=bool(report.models_flagged))


def delete_sheet(store: Store, *, actor: User, sheet: str, reason: str) -> tuple[ErasureReport, Changes]:
    """Delete a whole sheet with every trace of its items (its training sheets go too)."""
    from vital_desktop.services.sheets import find_sheet

    require(actor, "erase_data")
    reason = _check_reason(reason)
    with store.session() as s:
        row = find_sheet(s, sheet)
        report = _erase(s, actor, row, None, reason)
        s.execute(sa.delete(TrainingSheet).where(TrainingSheet.sheet_id == row.id))
        s.execute(sa.delete(Sheet).where(Sheet.id == row.id))
        report = ErasureReport(**{**report.to_dict(), "sheet_deleted": True})
        audit.record(s, actor, "sheet.delete", report.sheet, _audit_details(report, reason))
    return report, Changes(sheets=True, labels=True, training_sheets=True, pairs=True, predictions=True,
                           feedback=True, models=bool(report.models_flagged))


def _audit_details(report: ErasureReport, reason: str) -> dict:
    return {"reason": reason, "at": utcnow().isoformat(), **{k: v for k, v in report.to_dict().items()
                                                            if k not in ("sheet",)}}

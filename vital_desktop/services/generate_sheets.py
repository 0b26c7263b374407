"""Training-sheet records: the plain results of a generation and the lookups over them."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from vital_desktop.core.errors import NotFoundError
from vital_desktop.core.ids import iso
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store.db import Store
from vital_desktop.store.models import QAPair, Sheet, TrainingSheet

@dataclass(frozen=True)
class GenerationSummary:
    """The seeds' progress block for one training sheet."""

    training_sheet_id: str
    name: str
    status: str
    total: int
    generated: int
    labeled: int
    pre_approved: int
    approved_in_review: int
    unlabeled: int
    rejected: int
    flagged: int
    ai_failures: int

    @property
    def needs_review(self) -> int:
        return self.unlabeled + self.rejected + self.flagged

    def text(self) -> str:
        lines = [f"Progress: {self.labeled} / {self.total} labeled"
                 + ("" if self.generated == self.total else f"  ({self.generated} of {self.total} generated, {self.status})"),
                 "",
                 f"├─ Pre-approved (from canonical labels): {self.pre_approved}"]
        if self.approved_in_review:
            lines.append(f"├─ Approved in review: {self.approved_in_review}")
        lines += [f"└─ Needs Review: {self.needs_review}",
                  f"   ├─ Unlabeled: {self.unlabeled}",
                  f"   ├─ Rejected: {self.rejected}",
                  f"   └─ Flagged: {self.flagged}"]
        if self.ai_failures:
            lines.append(f"   (AI pre-label failed schema validation on {self.ai_failures} pairs; raw text kept)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {**self.__dict__, "needs_review": self.needs_review}


@dataclass(frozen=True)
class TrainingSheetInfo:
    id: str
    name: str
    sheet_id: str
    sheet_name: str
    template_id: str
    template_name: str
    template_version: str
    label_type: str
    ai_mode: str
    status: str
    total_items: int
    config: dict
    created_by: str
    created_at: str | None
    completed_at: str | None

    @property
    def template_ref(self) -> str:
        return f"{self.template_name}@{self.template_version}"

    def to_dict(self) -> dict:
        return {**self.__dict__, "template_ref": self.template_ref}


@dataclass(frozen=True)
class GenerationResult:
    training_sheet: TrainingSheetInfo
    summary: GenerationSummary
    written: int  # pairs written by this call (less than total after a resume)
    seconds: float

    def to_dict(self) -> dict:
        return {"training_sheet": self.training_sheet.to_dict(), "summary": self.summary.to_dict(),
                "written": self.written, "seconds": round(self.seconds, 3)}


def _ts_info(row: TrainingSheet, sheet_name: str) -> TrainingSheetInfo:
    return TrainingSheetInfo(
        id=row.id, name=row.name, sheet_id=row.sheet_id, sheet_name=sheet_name, template_id=row.template_id,
        template_name=row.template_name, template_version=row.template_version, label_type=row.label_type,
        ai_mode=row.ai_mode, status=row.status, total_items=row.total_items, config=dict(row.config or {}),
        created_by=row.created_by, created_at=iso(row.created_at), completed_at=iso(row.completed_at),
    )


# --- lookups ---------------------------------------------------------------------------------------


def _find_training_sheet(s: sa.orm.Session, ref: str) -> TrainingSheet:
    row = s.scalar(sa.select(TrainingSheet).where(sa.or_(TrainingSheet.name == ref, TrainingSheet.id == ref)))
    if row is None:
        names = s.scalars(sa.select(TrainingSheet.name).order_by(TrainingSheet.created_at)).all()
        raise NotFoundError(f"no training sheet named {ref!r}" + (f"; training sheets: {', '.join(names)}" if names else ""))
    return row


def _sheet_name(s: sa.orm.Session, sheet_id: str) -> str:
    return s.scalar(sa.select(Sheet.name).where(Sheet.id == sheet_id)) or sheet_id


def get_training_sheet(store: Store, ref: str) -> TrainingSheetInfo:
    """A training sheet by name or id."""
    with store.read() as s:
        row = _find_training_sheet(s, ref)
        return _ts_info(row, _sheet_name(s, row.sheet_id))


def list_training_sheets(store: Store, *, sheet: str | None = None) -> list[TrainingSheetInfo]:
    with store.read() as s:
        query = sa.select(TrainingSheet).order_by(TrainingSheet.created_at)
        if sheet:
            sheet_row = find_sheet(s, sheet)
            query = query.where(TrainingSheet.sheet_id == sheet_row.id)
        names = dict(s.execute(sa.select(Sheet.id, Sheet.name)).all())
        return [_ts_info(r, names.get(r.sheet_id, r.sheet_id)) for r in s.scalars(query)]


def summary(store: Store, training_sheet: str) -> GenerationSummary:
    """Counts by status and source: total, pre-approved, needs review (unlabeled, rejected, flagged)."""
    with store.read() as s:
        row = _find_training_sheet(s, training_sheet)
        return _summary(s, row)


def _summary(s: sa.orm.Session, row: TrainingSheet) -> GenerationSummary:
    counts = s.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(QAPair.status == "labeled"),
            sa.func.count().filter(QAPair.status == "labeled", QAPair.source == "canonical",
                                   QAPair.reviewed_by.is_(None)),
            sa.func.count().filter(QAPair.status == "unlabeled"),
            sa.func.count().filter(QAPair.status == "rejected"),
            sa.func.count().filter(QAPair.status == "flagged"),
            sa.func.count().filter(QAPair.ai_error.is_not(None)),
        ).where(QAPair.training_sheet_id == row.id)
    ).one()
    generated, labeled, pre, unlabeled, rejected, flagged, failures = (int(c) for c in counts)
    return GenerationSummary(row.id, row.name, row.status, row.total_items, generated, labeled, pre, labeled - pre,
                             unlabeled, rejected, flagged, failures)

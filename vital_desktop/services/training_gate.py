"""The one gate and the lookups shared by the TRAIN stage's modules (export, retraining, lineage).

Every export and every training run asks the same question of each pair or label through
`decide`, which applies the seeds' dual quality gates (`core.governance.passes_gates`):
status is ``labeled`` **and** the use is allowed **and** not prohibited.
"""


from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core import governance
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.store.models import (
    ModelRow,
    TrainingSheet,
)


# --- the one gate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GateDecision:
    """Whether one pair or label may be used for a use, and why not."""

    passes: bool
    reason: str | None


def decide(status: str, allowed: Iterable[str], prohibited: Iterable[str], use: str) -> GateDecision:
    """The dual quality gates for one row (the single place exports and training ask)."""
    governance.check_uses([use])
    allowed, prohibited = list(allowed or ()), list(prohibited or ())
    if governance.passes_gates(status, allowed, prohibited, use):
        return GateDecision(True, None)
    return GateDecision(False, governance.gate_failure_reason(status, allowed, prohibited, use))


def held_out_metrics(card: dict) -> dict:
    """The held-out metrics of a model card (the trainer writes them under ``metrics``)."""
    metrics = (card or {}).get("metrics", {}) or {}
    return metrics.get("held_out", metrics) if isinstance(metrics, dict) else {}


def label_status(review_state: str) -> str:
    """Canonical labels count as ``labeled`` unless a conflict waits for an expert."""
    return "labeled" if review_state == "ok" else review_state


# --- lookups ---------------------------------------------------------------------------------


def _training_sheet_row(s: Session, ref: str) -> TrainingSheet:
    row = s.scalar(sa.select(TrainingSheet).where(sa.or_(TrainingSheet.name == ref, TrainingSheet.id == ref)))
    if row is None:
        names = s.scalars(sa.select(TrainingSheet.name).order_by(TrainingSheet.name)).all()
        raise NotFoundError(
            f"no training sheet named {ref!r}" + (f"; training sheets here: {', '.join(names)}" if names else "")
        )
    return row


def resolve_model(s: Session, ref: str) -> ModelRow:
    """A model by id, ``name:version`` / ``name@version`` / ``name v2``, or name (active, else newest)."""
    from vital_desktop.store.models import Deployment

    row = s.get(ModelRow, ref)
    if row is not None:
        return row
    name, version = ref, None
    for sep in (":", "@", " v"):
        if sep in ref:
            head, _, tail = ref.rpartition(sep)
            tail = tail.lstrip("v")
            if head and tail.isdigit():
                name, version = head, int(tail)
                break
    query = sa.select(ModelRow).where(ModelRow.name == name)
    if version is not None:
        row = s.scalar(query.where(ModelRow.version == version))
    else:
        active = s.scalar(
            sa.select(Deployment.model_id)
            .where(Deployment.model_name == name, Deployment.status == "active")
            .order_by(Deployment.activated_at.desc())
            .limit(1)
        )
        row = s.get(ModelRow, active) if active else None
        if row is None:
            row = s.scalar(query.order_by(ModelRow.version.desc()).limit(1))
    if row is None:
        names = sorted({f"{n}:{v}" for n, v in s.execute(sa.select(ModelRow.name, ModelRow.version))})
        raise NotFoundError(f"no model {ref!r}" + (f"; models here: {', '.join(names)}" if names else ""))
    return row



def _class_field(source: Any, label_type: str) -> str | None:
    from vital_desktop.services.label_types import get_label_type

    try:
        return get_label_type(source, label_type).class_field
    except ValidationError:
        return None


def resolve_label_type(store: Any, *, label_type: str | None = None, sheet: str | None = None,
                       model: str | None = None) -> str:
    """The classification label type a TRAIN or MONITOR verb works on when the caller names none.

    In order: the one given; the type the model recorded at training (`model`); the sheet's only
    classification type that has labels there; the site's only classification type. Label types
    are site data, so no name is assumed: when several fit, a `ValidationError` names them.
    """
    if label_type:
        return label_type
    from vital_desktop.services.label_queries import label_type_counts
    from vital_desktop.services.label_types import list_label_types

    types = {name: lt for name, lt in list_label_types(store).items() if lt.kind == "classification"}
    known = sorted(types)
    if model is not None:
        with store.read() as s:
            row = resolve_model(s, model)
            recorded, model_classes = (row.card or {}).get("label_type"), set(row.classes or [])
        if isinstance(recorded, str) and recorded:
            return recorded
        # A model from elsewhere records no type: the one classification type that has its classes.
        fitting = [name for name in known if model_classes and model_classes <= set(types[name].all_classes())]
        if len(fitting) == 1:
            return fitting[0]
    if sheet is not None:
        on_sheet = [name for name in label_type_counts(store, sheet=sheet) if name in known]
        if len(on_sheet) == 1:
            return on_sheet[0]
        if len(on_sheet) > 1:
            raise ValidationError(f"sheet {sheet!r} has labels of {len(on_sheet)} classification label types "
                                  f"({', '.join(sorted(on_sheet))}); name the one to use with --label-type",
                                  details={"choices": sorted(on_sheet)})
    if len(known) == 1:
        return known[0]
    if not known:
        raise ValidationError("this site has no classification label type yet: create one on the Taxonomy page "
                              "(or `vital label types create`)")
    raise ValidationError(f"this site has {len(known)} classification label types ({', '.join(known)}); name the "
                          "one to use with --label-type", details={"choices": known})

"""Calibrating the language model's per-field confidence on evaluation-allowed canonical labels.

Like the classifier's: one temperature per enumerated answer field of a template version, fitted
(minimum negative log-likelihood, `inference.calibration.fit_temperature`) on the field's logits —
the summed token log-probabilities of each allowed value (`inference.llm_confidence`) — against the
values experts gave in canonical labels whose usage constraints allow ``evaluation``. The fitted
temperatures are stored per template version (``llm_calibrations``) and every later answer of that
version (`llm_answer.TemplateRunner`, generation) reports calibrated confidences.

The expected calibration error before and after is measured on the same labels the temperature
was fitted on (one parameter per field, so the in-sample gap is small, but it is in-sample; the
report says so). A field needs labels of at least two distinct values to be calibrated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from vital_desktop.core import governance
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.inference import calibration
from vital_desktop.services import llm_answer, templates
from vital_desktop.services.accounts import require
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store import audit
from vital_desktop.store.bulk import query_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import LlmCalibration, Sheet

#: Labelled items answered by default (each costs one language-model answer, ~1-3 s here).
DEFAULT_LIMIT = 200


@dataclass(frozen=True)
class FieldCalibration:
    """One field's fitted temperature and what it did (ECE in-sample, on `labels` answers)."""

    field: str
    temperature: float
    labels: int
    accuracy: float
    ece_before: float
    ece_after: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CalibrationReport:
    template_ref: str
    sheet: str
    answered: int
    skipped: dict[str, int]
    fields: tuple[FieldCalibration, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"template_ref": self.template_ref, "sheet": self.sheet, "answered": self.answered,
                "skipped": dict(self.skipped), "fields": [f.to_dict() for f in self.fields],
                "ece": "in-sample (fitted and measured on the same evaluation-allowed labels)"}

    def text(self) -> str:
        lines = [f"{self.template_ref} on {self.sheet!r}: {self.answered} labelled items answered"]
        for f in self.fields:
            lines.append(f"  {f.field}: T = {f.temperature:.3f} from {f.labels} labels, accuracy {f.accuracy:.0%}, "
                         f"ECE {f.ece_before:.3f} -> {f.ece_after:.3f} (in-sample)")
        if not self.fields:
            lines.append("  no field could be calibrated (each needs labels of at least two values)")
        for reason, count in self.skipped.items():
            if count:
                lines.append(f"  skipped {count}: {reason}")
        return "\n".join(lines)


def _labelled_items(store: Store, sheet: str, label_type: str, limit: int) -> tuple[Sheet, list[dict[str, Any]], int]:
    """Evaluation-allowed labelled items of the sheet in order (at most `limit`), and how many were not allowed."""
    with store.read() as s:
        row = find_sheet(s, sheet)
        s.expunge(row)
        rows = query_arrow(s, (
            "SELECT i.item_ref, i.image_path, i.metadata::VARCHAR AS metadata, c.label_data::VARCHAR AS label_data, "
            "c.allowed_uses::VARCHAR AS allowed, c.prohibited_uses::VARCHAR AS prohibited "
            "FROM sheet_items i JOIN canonical_labels c ON c.sheet_id = i.sheet_id AND c.item_ref = i.item_ref "
            "AND c.label_type = ? WHERE i.sheet_id = ? AND c.review_state <> 'conflict' ORDER BY i.position"),
            [label_type, row.id]).to_pylist()
    allowed: list[dict[str, Any]] = []
    refused = 0
    for r in rows:
        if governance.use_permitted(json.loads(r["allowed"] or "[]"), json.loads(r["prohibited"] or "[]"), "evaluation"):
            if len(allowed) < limit:
                allowed.append(r)
        else:
            refused += 1
    return row, allowed, refused


def calibrate_template(store: Store, *, actor: User, template: str, sheet: str, limit: int | None = None,
                       progress: Progress | None = None,
                       runner: llm_answer.TemplateRunner | None = None) -> tuple[CalibrationReport, Changes]:
    """Fit and store the per-field temperatures of `template` (``NAME[@VERSION]``) on `sheet`'s labels.

    Refuses (nothing written) a template with no enumerated field, a no-evidence image template,
    and a sheet with no evaluation-allowed labels of the template's label type.
    """
    require(actor, "generate")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError(f"--limit must be a whole number of items, at least 1 (got {limit!r})")
    progress = progress or Progress()
    info = templates.get_template(store, template)
    if runner is None:
        runner = llm_answer.TemplateRunner(store, info, calibrated=False)
    if not runner.fields:
        raise ValidationError(f"template {info.ref} has no enumerated answer field (enum or boolean) to calibrate")
    sheet_row, items, not_allowed = _labelled_items(store, sheet, info.label_type, limit or DEFAULT_LIMIT)
    if not items:
        raise ValidationError(f"sheet {sheet_row.name!r} has no canonical labels of type {info.label_type!r} that "
                              "allow evaluation" + (f" ({not_allowed} prohibit it)" if not_allowed else ""))
    root = Path(sheet_row.image_root) if sheet_row.image_root else None
    logits: dict[str, list[list[float]]] = {f: [] for f in runner.fields}
    targets: dict[str, list[int]] = {f: [] for f in runner.fields}
    skipped = {"not allowed for evaluation": not_allowed, "answer not valid JSON": 0}
    progress.start(len(items), f"calibrating {info.ref}")
    for n, item in enumerate(items, start=1):
        progress.check()
        image = str(root / item["image_path"]) if (root is not None and item["image_path"]) else None
        answer = runner.answer(item["item_ref"], json.loads(item["metadata"]), image, cancel=progress)
        if not answer.raw_logprobs:
            skipped["answer not valid JSON"] += 1
        truth = json.loads(item["label_data"] or "{}")
        for name, row in answer.raw_logprobs.items():
            options = [json.dumps(v) for v in runner.fields[name]]
            if name in truth and json.dumps(truth[name]) in options:
                logits[name].append(row)
                targets[name].append(options.index(json.dumps(truth[name])))
        progress.set(n, f"{n} of {len(items)} labelled items answered")
    fitted = []
    for name in runner.fields:
        if len(set(targets[name])) < 2:
            continue
        x, y = np.asarray(logits[name], dtype=np.float64), np.asarray(targets[name])
        t = calibration.fit_temperature(x, y)
        before = calibration.reliability(calibration.softmax(x), y)["ece"]
        after = calibration.reliability(calibration.softmax(x, t), y)["ece"]
        accuracy = float((x.argmax(axis=1) == y).mean())
        fitted.append(FieldCalibration(name, round(t, 6), len(y), round(accuracy, 4), before, after))
    with store.session() as s:
        for f in fitted:
            s.execute(sa.delete(LlmCalibration).where(LlmCalibration.template_id == info.id,
                                                      LlmCalibration.field == f.field))
            s.add(LlmCalibration(id=new_id(), template_id=info.id, template_ref=info.ref, field=f.field,
                                 temperature=f.temperature, labels=f.labels, accuracy=f.accuracy,
                                 ece_before=f.ece_before, ece_after=f.ece_after, sheet_id=sheet_row.id,
                                 created_by=actor.username, created_at=utcnow()))
        audit.record(s, actor, "template.calibrate_confidence", info.ref,
                     {"sheet": sheet_row.name, "answered": len(items), "fields": [f.to_dict() for f in fitted]})
    progress.finish(f"calibrated {len(fitted)} field(s) of {info.ref}")
    return (CalibrationReport(info.ref, sheet_row.name, len(items), skipped, tuple(fitted)), Changes(templates=True))


def calibrations(store: Store, template: str) -> list[dict[str, Any]]:
    """The stored calibrations of a template version (empty if it was never calibrated)."""
    info = templates.get_template(store, template)
    with store.read() as s:
        rows = s.scalars(sa.select(LlmCalibration).where(LlmCalibration.template_id == info.id)
                         .order_by(LlmCalibration.field)).all()
        return [{"field": r.field, "temperature": r.temperature, "labels": r.labels, "accuracy": r.accuracy,
                 "ece_before": r.ece_before, "ece_after": r.ece_after, "template_ref": r.template_ref,
                 "created_by": r.created_by, "created_at": r.created_at.isoformat() if r.created_at else None}
                for r in rows]

"""IMPROVE stage: feedback on predictions, expert review, and gap analysis.

An inspector flags a prediction as wrong and gives the correction (permission ``feedback``).
Nothing reaches training until an expert reviews it (permission ``review_feedback``):
accepting writes the correction as a canonical label through `labels.set_label_in_session`,
so the label's versioning, governance and conflict rules apply exactly as in the labeling
tool. The next model trained on that label marks the feedback ``added_to_training`` (see
`training.train_classifier`).

Statuses: ``new`` → ``accepted`` | ``rejected``; ``accepted`` → ``added_to_training``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.users import User
from vital_desktop.services import labels
from vital_desktop.services.accounts import require
from vital_desktop.services.label_types import MAX_TEXT, AttributeField, LabelType, get_label_type, list_label_types
from vital_desktop.services.training import DEFAULT_MIN_PER_CLASS, resolve_model
from vital_desktop.store import audit
from vital_desktop.store.bulk import raw_connection
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, FeedbackItem, ModelRow, Prediction, Sheet

STATUSES = ("new", "accepted", "rejected", "added_to_training")
LOW_CONFIDENCE = 0.6
MAX_COMMENT = 2000


@dataclass(frozen=True)
class FeedbackInfo:
    id: str
    prediction_id: str | None
    model_id: str | None
    model: str | None
    sheet_id: str | None
    sheet: str | None
    item_ref: str | None
    predicted_class: str | None
    corrected_class: str | None
    corrected_label: dict | None
    in_taxonomy: bool
    comment: str
    status: str
    canonical_label_id: str | None
    review_note: str
    created_by: str
    created_at: str | None
    reviewed_by: str | None
    reviewed_at: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def _taxonomy(s: Any, label_type: str | None) -> list[str]:
    return get_label_type(s, label_type).classes() if label_type else []


def model_label_type(s: Any, model: ModelRow | None) -> str | None:
    """The label type a classifier predicts: its card's, else the one classification-like type
    whose classes hold all of the model's classes (models registered before cards said so)."""
    if model is None:
        return None
    card = model.card or {}
    if card.get("label_type"):
        return str(card["label_type"])
    classes = set(model.classes or [])
    fits = [t.name for t in list_label_types(s).values() if t.class_field and classes and classes <= set(t.classes())]
    return fits[0] if len(fits) == 1 else None


def correction_classes(store: Store, model: str | None = None) -> list[str]:
    """The classes an inspector may correct a prediction to: those of the (active) classifier's
    label type; without one, every class of the site's classification label types."""
    from vital_desktop.services import registry

    with store.read() as s:
        row = None
        if model is not None:
            row = resolve_model(s, model)
        else:
            active = registry.active_model(store, registry.KIND_ONNX)
            row = s.get(ModelRow, active.id) if active is not None else None
        name = model_label_type(s, row)
        if name:
            return get_label_type(s, name).classes()
        out: list[str] = []
        for lt in list_label_types(s).values():
            if lt.kind == "classification":
                out += [c for c in lt.classes() if c not in out]
        return out


def _label_type_for(s: Any, model: ModelRow | None, corrected: str, given: str | None) -> str | None:
    if given:
        get_label_type(s, given)
        return given
    found = model_label_type(s, model)
    if found or model is not None:
        return found
    fits = [t.name for t in list_label_types(s).values() if t.class_field and corrected in t.classes()]
    return fits[0] if len(fits) == 1 else None


_TRUE, _FALSE = frozenset({"true", "yes", "1", "on"}), frozenset({"false", "no", "0", "off"})


def _typed(attr: AttributeField, value: Any) -> Any:
    """One attribute value in its field's type (text from the command line is converted), or a
    ValidationError naming the field and what it takes."""
    what = attr.title or attr.name
    if attr.type == "choice":
        if not isinstance(value, str) or value not in attr.choices:
            raise ValidationError(f"{what} ({attr.name}) must be one of {', '.join(attr.choices)}; got {value!r}")
        return value
    if attr.type == "boolean":
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if not isinstance(value, bool):
            raise ValidationError(f"{what} ({attr.name}) is yes or no (true/false); got {value!r}")
        return value
    if attr.type == "number":
        number: Any = value
        if isinstance(value, str):
            number = _parse_number(value)
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ValidationError(f"{what} ({attr.name}) must be a finite number; got {value!r}")
        if (attr.minimum is not None and number < attr.minimum) or (attr.maximum is not None and number > attr.maximum):
            raise ValidationError(f"{what} ({attr.name}) must be between {attr.minimum} and {attr.maximum}; got {number}")
        return number
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValidationError(f"{what} ({attr.name}) is text of at most {MAX_TEXT} characters")
    return value


def _parse_number(text: str) -> int | float | None:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return None


def check_attributes(lt: LabelType | None, values: dict[str, Any]) -> dict[str, Any]:
    """Feedback attribute values checked against the label type's own attribute fields: each
    name one of its fields, each value of the field's type (a choice one of its choices), every
    required field given. None values count as not given. Returns the typed values."""
    fields = {a.name: a for a in lt.attributes} if lt else {}
    given = {name: value for name, value in values.items() if value is not None}
    out: dict[str, Any] = {}
    for name, value in given.items():
        attr = fields.get(name)
        if attr is None:
            where = f"label type {lt.name}" if lt else "the feedback's label type (none found for this prediction)"
            known = ", ".join(fields) if fields else "it has none"
            raise ValidationError(f"{where} has no attribute field {name!r}; its attribute fields: {known}")
        out[name] = _typed(attr, value)
    missing = [a.name for a in fields.values() if a.required and a.name not in out]
    if missing and lt is not None:
        raise ValidationError(f"label type {lt.name} requires the attribute field(s) {', '.join(missing)}")
    return out


def prediction_fields(store: Store, prediction_ids: list[str]) -> dict[str, tuple[str | None, list[AttributeField]]]:
    """For each prediction, the label type feedback on it is for and that type's attribute fields
    (what the feedback form asks besides the class)."""
    out: dict[str, tuple[str | None, list[AttributeField]]] = {}
    by_model: dict[str | None, tuple[str | None, list[AttributeField]]] = {}
    with store.read() as s:
        rows = s.execute(sa.select(Prediction.id, Prediction.model_id).where(Prediction.id.in_(prediction_ids))).all() \
            if prediction_ids else []
        for prediction_id, model_id in rows:
            if model_id not in by_model:
                name = model_label_type(s, s.get(ModelRow, model_id) if model_id else None)
                try:
                    fields = list(get_label_type(s, name).attributes) if name else []
                except NotFoundError:  # the model names a label type this site no longer has
                    name, fields = None, []
                by_model[model_id] = (name, fields)
            out[prediction_id] = by_model[model_id]
    return out


def _info(s: Any, row: FeedbackItem) -> FeedbackInfo:
    model = s.get(ModelRow, row.model_id) if row.model_id else None
    sheet = s.get(Sheet, row.sheet_id) if row.sheet_id else None
    return FeedbackInfo(
        id=row.id, prediction_id=row.prediction_id, model_id=row.model_id,
        model=f"{model.name}@{model.version}" if model else None, sheet_id=row.sheet_id,
        sheet=sheet.name if sheet else None, item_ref=row.item_ref, predicted_class=row.predicted_class,
        corrected_class=row.corrected_class, corrected_label=row.corrected_label,
        in_taxonomy=row.corrected_class in _taxonomy(s, row.label_type), comment=row.comment, status=row.status,
        canonical_label_id=row.canonical_label_id, review_note=row.review_note, created_by=row.created_by,
        created_at=iso(row.created_at), reviewed_by=row.reviewed_by, reviewed_at=iso(row.reviewed_at),
    )


def add_feedback(
    store: Store,
    *,
    actor: User,
    corrected_class: str,
    prediction_id: str | None = None,
    sheet: str | None = None,
    item_ref: str | None = None,
    attributes: dict[str, Any] | None = None,
    comment: str = "",
    label_type: str | None = None,
) -> tuple[FeedbackInfo, Changes]:
    """Flag a prediction (or an item) as wrong and say what it really shows.

    The corrected class may be outside the taxonomy (a new defect type an inspector sees for
    the first time); gap analysis reports it, and an expert cannot accept it into the labels
    until the label type knows that class. `attributes` are values of the label type's own
    attribute fields (checked and typed by `check_attributes`; a None value means not given).
    """
    require(actor, "feedback")
    corrected = (corrected_class or "").strip()
    if not corrected:
        raise ValidationError("say what the image really shows: a corrected class is required")
    if len(comment) > MAX_COMMENT:
        raise ValidationError(f"a comment holds at most {MAX_COMMENT} characters")
    with store.session() as s:
        model_id = predicted = None
        if prediction_id is not None:
            prediction = s.get(Prediction, prediction_id)
            if prediction is None:
                raise NotFoundError(f"no prediction {prediction_id!r}")
            if prediction.predicted_class is None:
                raise ValidationError("that prediction has no class (its image could not be read)")
            if prediction.predicted_class == corrected:
                raise ValidationError(
                    f"the prediction already says {corrected!r}; feedback is for predictions that are wrong")
            model_id, predicted = prediction.model_id, prediction.predicted_class
            sheet_id, item = prediction.sheet_id, prediction.item_ref
            duplicate = s.scalar(sa.select(FeedbackItem.id).where(
                FeedbackItem.prediction_id == prediction_id, FeedbackItem.created_by == actor.username,
                FeedbackItem.status == "new"))
            if duplicate is not None:
                raise ConflictError(f"you already flagged this prediction (feedback {duplicate}); it waits for review")
        else:
            if not (sheet and item_ref):
                raise ValidationError("name the prediction, or the sheet and item the feedback is about")
            sheet_row = labels._sheet_row(s, sheet)
            from vital_desktop.store.models import SheetItem

            if s.scalar(sa.select(SheetItem.id).where(SheetItem.sheet_id == sheet_row.id,
                                                      SheetItem.item_ref == item_ref)) is None:
                raise NotFoundError(f"sheet {sheet_row.name!r} has no item {item_ref!r}")
            sheet_id, item = sheet_row.id, item_ref
        type_name = _label_type_for(s, s.get(ModelRow, model_id) if model_id else None, corrected, label_type)
        lt = get_label_type(s, type_name) if type_name else None
        corrected_label: dict[str, Any] = {(lt.class_field if lt and lt.class_field else "class"): corrected}
        corrected_label.update(check_attributes(lt, attributes or {}))
        row = FeedbackItem(
            prediction_id=prediction_id, model_id=model_id, sheet_id=sheet_id, item_ref=item, label_type=type_name,
            predicted_class=predicted, corrected_class=corrected, corrected_label=corrected_label,
            comment=comment, status="new", created_by=actor.username,
        )
        s.add(row)
        s.flush()
        audit.record(s, actor, "feedback.add", row.id, {"prediction_id": prediction_id, "item_ref": item,
                                                         "predicted": predicted, "corrected": corrected})
        info = _info(s, row)
    return info, Changes(feedback=True)


def list_feedback(
    store: Store, *, status: str | None = None, model: str | None = None, limit: int | None = 500
) -> list[FeedbackInfo]:
    """The feedback queue, oldest first (the order an expert works through it)."""
    if status is not None and status not in STATUSES:
        raise ValidationError(f"unknown feedback status {status!r}; use {', '.join(STATUSES)}")
    with store.read() as s:
        query = sa.select(FeedbackItem).order_by(FeedbackItem.created_at, FeedbackItem.id)
        if status is not None:
            query = query.where(FeedbackItem.status == status)
        if model is not None:
            query = query.where(FeedbackItem.model_id == resolve_model(s, model).id)
        if limit is not None:
            query = query.limit(limit)
        return [_info(s, row) for row in s.scalars(query)]


def _open_item(s: Any, feedback_id: str) -> FeedbackItem:
    row = s.get(FeedbackItem, feedback_id)
    if row is None:
        raise NotFoundError(f"no feedback item {feedback_id!r}")
    if row.status != "new":
        raise ConflictError(f"feedback {feedback_id} was already reviewed (status {row.status})")
    return row


@dataclass(frozen=True)
class AcceptResult:
    feedback: FeedbackInfo
    label_outcome: str  # created | updated | unchanged | conflict
    label_id: str | None
    label_version: int | None
    conflict_id: str | None

    def to_dict(self) -> dict:
        return {"feedback": self.feedback.to_dict(), "label_outcome": self.label_outcome, "label_id": self.label_id,
                "label_version": self.label_version, "conflict_id": self.conflict_id}


def accept_feedback(
    store: Store,
    *,
    actor: User,
    feedback_id: str,
    note: str = "",
    expected_version: int | None = None,
    label_type: str | None = None,
) -> tuple[AcceptResult, Changes]:
    """Expert review: the correction becomes the item's canonical label (a new version).

    `expected_version` is the label version the reviewer saw; without it, a label last written
    by someone else is not overwritten but recorded as a conflict for LABEL to resolve (the
    canonical label rules). The label keeps its usage constraints.
    """
    require(actor, "review_feedback")
    with store.session() as s:
        row = _open_item(s, feedback_id)
        if not (row.sheet_id and row.item_ref):
            raise ValidationError("this feedback is about an image outside any sheet; import it into a sheet first")
        label_type = label_type or row.label_type
        if not label_type:
            raise ValidationError("this feedback names no label type; say which one the correction is for")
        lt = get_label_type(s, label_type)
        taxonomy = lt.classes()
        if row.corrected_class not in taxonomy:
            raise ValidationError(
                f"{row.corrected_class!r} is not a {label_type} class ({', '.join(taxonomy)}); gap analysis lists it "
                "as a new defect type - extend the taxonomy before accepting, or reject this feedback")
        current = s.scalar(sa.select(CanonicalLabel).where(
            CanonicalLabel.sheet_id == row.sheet_id, CanonicalLabel.item_ref == row.item_ref,
            CanonicalLabel.label_type == label_type))
        # The correction replaces the class; attributes judged for the old class are not kept
        # unless the correction gives them again.
        data = dict(row.corrected_label or {})
        if lt.class_field:
            data = {k: v for k, v in data.items() if k != "class" or lt.class_field == "class"}
            data[lt.class_field] = row.corrected_class
        keep: dict[str, Any] = {}
        if current is not None:
            keep = dict(allowed_uses=list(current.allowed_uses or []), prohibited_uses=list(current.prohibited_uses or []),
                        usage_reason=current.usage_reason, confidence=current.confidence, notes=current.notes)
        result = labels.set_label_in_session(
            s, actor, sheet=row.sheet_id, item_ref=row.item_ref, label_type=label_type, label_data=data,
            expected_version=expected_version, action="feedback",
            reason=f"feedback {row.id}: model said {row.predicted_class}, inspector {row.created_by} says "
                   f"{row.corrected_class}" + (f"; {note}" if note else ""),
            **keep,
        )
        row.status = "accepted"
        row.reviewed_by = actor.username
        row.reviewed_at = utcnow()
        if result.outcome == "conflict":
            row.canonical_label_id = None
            row.review_note = (note + "; " if note else "") + (
                f"the label changed since it was shown; the correction waits as label conflict {result.conflict_id}")
        else:
            row.canonical_label_id = result.label.id
            row.review_note = note
        s.flush()
        audit.record(s, actor, "feedback.accept", row.id, {"label_outcome": result.outcome,
                                                            "label_version": result.label.version})
        info = _info(s, row)
        out = AcceptResult(info, result.outcome, result.label.id, result.label.version, result.conflict_id)
    return out, Changes(feedback=True, labels=True)


def reject_feedback(store: Store, *, actor: User, feedback_id: str, note: str = "") -> tuple[FeedbackInfo, Changes]:
    """Expert review: the inspector's correction is not taken (the reason is kept)."""
    require(actor, "review_feedback")
    with store.session() as s:
        row = _open_item(s, feedback_id)
        row.status = "rejected"
        row.review_note = note
        row.reviewed_by = actor.username
        row.reviewed_at = utcnow()
        s.flush()
        audit.record(s, actor, "feedback.reject", row.id, {"note": note})
        info = _info(s, row)
    return info, Changes(feedback=True)


# --- gap analysis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassGap:
    cls: str
    in_model: bool
    in_taxonomy: bool
    training_count: int
    predictions: int
    flagged_wrong: int  # feedback says the model predicted this class wrongly
    error_rate: float | None
    missed: int  # feedback says the item really is this class
    low_confidence: int

    def to_dict(self) -> dict:
        data = asdict(self)
        data["class"] = data.pop("cls")
        return data


@dataclass(frozen=True)
class Finding:
    kind: str  # new_class | few_examples | high_error_rate | low_confidence_cluster
    cls: str
    impact: float
    message: str
    suggestion: str
    evidence: dict[str, Any]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["class"] = data.pop("cls")
        return data


@dataclass(frozen=True)
class GapReport:
    model_id: str
    model: str
    classes: list[dict]
    findings: tuple[Finding, ...]
    impact_rule: str

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "model": self.model, "classes": self.classes,
                "findings": [f.to_dict() for f in self.findings], "impact_rule": self.impact_rule}

    def text(self) -> str:
        lines = [f"Model weaknesses of {self.model} (ranked by impact):"]
        lines += [f"- [{f.impact:.0f}] {f.message} -> {f.suggestion}" for f in self.findings] or ["- none found"]
        return "\n".join(lines)


IMPACT_RULE = (
    "impact = predictions affected, weighted by how sure we are they are wrong: each feedback naming a class the "
    "model cannot predict counts 3, each prediction flagged wrong counts 2, each missed item counts 2, each "
    "low-confidence prediction counts 1 x (1 - mean confidence); a class with too few training examples "
    "(below half the median class, at least 10) counts its predictions + 2 x its misses, scaled by the "
    "fraction of examples it lacks"
)


def gap_analysis(
    store: Store, *, model: str | None = None, low_confidence: float = LOW_CONFIDENCE,
    error_rate_threshold: float = 0.10, min_cluster: int = 5,
) -> GapReport:
    """Where is the model weak, and what to label next: per-class training counts, error rates
    from feedback, low-confidence clusters and classes the model has never seen, ranked."""
    from vital_desktop.services import registry

    with store.read() as s:
        if model is None:
            active = registry.active_model(store, registry.KIND_ONNX)
            if active is None:
                raise NotFoundError("no active classifier: name a model (vital gaps --model NAME)")
            model = active.id
        row = resolve_model(s, model)
        card = dict(row.card or {})
        model_classes = list(row.classes or [])
        training_counts: dict[str, int] = dict(card.get("training", {}).get("class_counts", {}))
        raw = raw_connection(s)
        per_class = raw.execute(
            "SELECT predicted_class, count(*), count(*) FILTER (WHERE confidence < ?), "
            "avg(confidence) FILTER (WHERE confidence < ?) FROM predictions WHERE model_id = ? "
            "AND predicted_class IS NOT NULL GROUP BY predicted_class",
            [low_confidence, low_confidence, row.id],
        ).fetchall()
        clusters = raw.execute(
            "SELECT predicted_class, CAST(image_width AS VARCHAR) || 'x' || CAST(image_height AS VARCHAR) AS resolution, "
            "count(*) AS n, avg(confidence) FROM predictions WHERE model_id = ? AND confidence < ? "
            "GROUP BY predicted_class, resolution HAVING count(*) >= ? ORDER BY n DESC",
            [row.id, low_confidence, min_cluster],
        ).fetchall()
        feedback_rows = s.execute(sa.select(FeedbackItem.predicted_class, FeedbackItem.corrected_class).where(
            FeedbackItem.model_id == row.id, FeedbackItem.status != "rejected")).all()
        ref = f"{row.name}@{row.version}"
    with store.read() as s:
        taxonomy = _taxonomy(s, model_label_type(s, s.get(ModelRow, row.id)))
    predictions = {c: int(n) for c, n, _, _ in per_class}
    low = {c: int(n_low) for c, _, n_low, _ in per_class}
    flagged = Counter(p for p, _ in feedback_rows if p)
    missed = Counter(c for _, c in feedback_rows if c)
    all_classes = sorted(set(model_classes) | set(training_counts) | set(predictions) | set(missed))
    gaps = [
        ClassGap(
            cls=c, in_model=c in model_classes, in_taxonomy=c in taxonomy, training_count=int(training_counts.get(c, 0)),
            predictions=predictions.get(c, 0), flagged_wrong=flagged.get(c, 0),
            error_rate=round(flagged.get(c, 0) / predictions[c], 4) if predictions.get(c) else None,
            missed=missed.get(c, 0), low_confidence=low.get(c, 0),
        )
        for c in all_classes
    ]
    trained = [g.training_count for g in gaps if g.training_count > 0]
    typical = statistics.median(trained) if trained else 0
    few_limit = max(DEFAULT_MIN_PER_CLASS * 2, int(typical * 0.5))
    findings: list[Finding] = []
    for g in gaps:
        if g.missed and not g.in_model:
            where = "not in the training taxonomy" if not g.in_taxonomy else "a class this model was not trained on"
            findings.append(Finding(
                "new_class", g.cls, 3.0 * g.missed,
                f"New defect type detected: {g.cls!r} ({where}), named in {g.missed} feedback item(s)",
                "extend the taxonomy and label examples" if not g.in_taxonomy else "label examples and retrain with this class",
                {"feedback": g.missed},
            ))
        if g.in_model and g.training_count < few_limit:
            shortfall = few_limit - g.training_count
            findings.append(Finding(
                "few_examples", g.cls, round(shortfall / few_limit * (g.predictions + 2 * g.missed), 2),
                f"{g.cls}: only {g.training_count} training examples (typical class: {typical:.0f})",
                f"label about {shortfall} more {g.cls} images",
                {"training_count": g.training_count, "typical": typical, "missed": g.missed},
            ))
        if g.error_rate is not None and g.error_rate >= error_rate_threshold and g.flagged_wrong:
            findings.append(Finding(
                "high_error_rate", g.cls, float(2 * g.flagged_wrong + 2 * g.missed),
                f"{g.cls}: {g.error_rate:.0%} of its predictions were flagged wrong ({g.flagged_wrong} of {g.predictions})",
                "review the labels of this class and add corrected examples",
                {"flagged_wrong": g.flagged_wrong, "predictions": g.predictions, "missed": g.missed},
            ))
    for cls, resolution, n, mean_conf in clusters:
        findings.append(Finding(
            "low_confidence_cluster", cls, round(float(n) * (1.0 - float(mean_conf or 0.0)), 2),
            f"{n} low-confidence predictions of {cls} at {resolution} (mean confidence {float(mean_conf or 0):.2f})",
            "label a sample of these images",
            {"count": int(n), "resolution": resolution, "mean_confidence": round(float(mean_conf or 0), 3)},
        ))
    findings.sort(key=lambda f: (-f.impact, f.kind, f.cls))
    return GapReport(row.id, ref, [g.to_dict() for g in gaps], tuple(findings), IMPACT_RULE)


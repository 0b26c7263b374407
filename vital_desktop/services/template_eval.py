"""GENERATE, measured: how well a template version answers, against the experts' canonical labels.

`evaluate_template` runs one template version on a sheet's items that hold a canonical label
of the template's label type whose usage constraints allow ``evaluation`` (asked of
`core.governance`; disputed labels are left out), through the runner generation uses
(`services.llm_answer.TemplateRunner`: the prompt, the classifier's evidence for an image
template, and the grammar are the ones a training sheet would get). It reports, and stores
with the version (`template_evaluations`):

- accuracy per field for every enumerated or boolean field the label holds (free text is not
  scored; numbers get the mean absolute error), an answer that failed its schema counting as
  wrong on every field;
- the schema-valid rate;
- the expected calibration error (ECE, 10 equal-width bins) of the confidences the answers
  carry: per enumerated field, from the constrained answer's token probabilities
  (`services.llm_answer`, calibrated when the version has a fitted temperature); a number the
  model writes about itself (a ``confidence`` field) is never taken as its confidence.

The scoring (`score_template`) is shared with the prompt optimiser (`template_optimise`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop.core import governance
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_id, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.inference.calibration import ECE_BINS
from vital_desktop.services import templates
from vital_desktop.services.accounts import require
from vital_desktop.services.label_types import LabelType, check_label_data
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store import audit
from vital_desktop.store.bulk import query_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import Sheet, TemplateEvaluation

#: Language-model modes an evaluation may run (the generation pre-labelers of the same names).
EVAL_MODES = ("llm", "both")
PURPOSES = ("evaluate", "optimise-selection", "optimise-heldout")

PrelabelerFactory = Callable[[Store, templates.TemplateInfo], Any]


# --- the labelled items --------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledItem:
    """An item with its canonical label, as evaluation and few-shot selection see it."""

    item_ref: str
    position: int
    data: dict
    image_path: str | None
    label_id: str
    label_version: int
    expected: dict
    allowed_uses: list[str]
    prohibited_uses: list[str]
    tags: list[str]


@dataclass(frozen=True)
class LabelPool:
    """The sheet's labelled items of one label type, split by what their constraints allow."""

    sheet_id: str
    sheet_name: str
    sheet_tags: list[str]
    evaluation: list[LabelledItem]
    few_shot: list[LabelledItem]
    excluded: dict[str, int]  # why labelled items were left out of evaluation: {reason: count}


def _json_list(text: Any) -> list[str]:
    if text is None:
        return []
    value = json.loads(text) if isinstance(text, str) else text
    return [str(v) for v in value] if isinstance(value, list) else []


def label_pool(store: Store, *, sheet: str, label_type: str) -> LabelPool:
    """The sheet's canonical labels of `label_type`: which may score a template (use
    ``evaluation``), and which may be shown to a model as examples (use ``few_shot``, through the
    site's export gate, since few-shot examples travel with the template)."""
    from vital_desktop.services import site

    with store.read() as s:
        row = find_sheet(s, sheet)
        rows = query_arrow(s, (
            "SELECT i.item_ref, i.position, i.image_path, i.metadata::VARCHAR AS metadata, c.id AS label_id, "
            "c.version AS label_version, c.label_data::VARCHAR AS label_data, "
            "c.allowed_uses::VARCHAR AS allowed_uses, c.prohibited_uses::VARCHAR AS prohibited_uses, "
            "c.data_classification::VARCHAR AS tags, c.review_state "
            "FROM canonical_labels c JOIN sheet_items i ON i.sheet_id = c.sheet_id AND i.item_ref = c.item_ref "
            "WHERE c.sheet_id = ? AND c.label_type = ? ORDER BY i.position"), [row.id, label_type]).to_pylist()
        gate = site.export_gate(s, use="few_shot", destination="training")
        sheet_id, sheet_name, sheet_tags = row.id, row.name, list(row.classification or [])
        root = Path(row.image_root) if row.image_root else None
    evaluation: list[LabelledItem] = []
    few_shot: list[LabelledItem] = []
    excluded: dict[str, int] = {}
    for r in rows:
        item = LabelledItem(
            item_ref=r["item_ref"], position=int(r["position"]), data=json.loads(r["metadata"] or "{}"),
            image_path=str(root / r["image_path"]) if (root is not None and r["image_path"]) else None,
            label_id=r["label_id"], label_version=int(r["label_version"]), expected=json.loads(r["label_data"]),
            allowed_uses=_json_list(r["allowed_uses"]), prohibited_uses=_json_list(r["prohibited_uses"]),
            tags=sorted(set(_json_list(r["tags"])) | set(sheet_tags)),
        )
        if r["review_state"] == "conflict":
            excluded["open conflict"] = excluded.get("open conflict", 0) + 1
            continue
        if governance.use_permitted(item.allowed_uses, item.prohibited_uses, "evaluation"):
            evaluation.append(item)
        else:
            reason = governance.gate_failure_reason("labeled", item.allowed_uses, item.prohibited_uses, "evaluation")
            excluded[reason or "evaluation not allowed"] = excluded.get(reason or "evaluation not allowed", 0) + 1
        if gate.permits(item.tags, allowed=item.allowed_uses, prohibited=item.prohibited_uses):
            few_shot.append(item)
    return LabelPool(sheet_id, sheet_name, sheet_tags, evaluation, few_shot, excluded)


# --- scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredFields:
    """Which label fields are scored, and how."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    class_field: str | None


def scored_fields(label_type: LabelType, output_schema: dict) -> ScoredFields:
    """Enumerated and boolean fields are scored by exact match, numbers by absolute error;
    only fields both the label type holds and the template answers count."""
    props = label_type.schema.get("properties", {})
    answered = output_schema.get("properties", {})
    categorical, numeric = [], []
    for name, prop in props.items():
        if name not in answered or not isinstance(prop, dict):
            continue
        kind = prop.get("type")
        if "enum" in prop or kind == "boolean":
            categorical.append(name)
        elif kind in ("number", "integer"):
            numeric.append(name)
    class_field = label_type.class_field if label_type.class_field in categorical else (
        categorical[0] if categorical else None)
    return ScoredFields(tuple(categorical), tuple(numeric), class_field)


@dataclass(frozen=True)
class ItemScore:
    item_ref: str
    valid: bool
    correct: dict[str, bool]
    confidence: dict[str, float]
    abs_error: dict[str, float]
    answer: dict | None
    error: str | None = None
    prompt_tokens: int = 0  # what the model read, and how much of it came from the runtime's prefix cache
    cached_tokens: int = 0

    def to_dict(self) -> dict:
        return {"item_ref": self.item_ref, "valid": self.valid, "correct": self.correct,
                "confidence": {k: round(v, 4) for k, v in self.confidence.items()},
                "abs_error": {k: round(v, 4) for k, v in self.abs_error.items()}, "answer": self.answer,
                "error": self.error, "prompt_tokens": self.prompt_tokens, "cached_tokens": self.cached_tokens}


@dataclass(frozen=True)
class TemplateScore:
    """The measured quality of one template (version or candidate) on a set of labelled items."""

    items: int
    schema_valid_rate: float | None
    field_accuracy: dict[str, float]
    accuracy: float | None  # mean of the per-field accuracies: what optimisation maximises
    ece: float | None
    field_ece: dict[str, float]
    mean_abs_error: dict[str, float]
    per_item: list[ItemScore] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def objective(self) -> tuple[float, float]:
        """What a higher-is-better comparison uses: accuracy, then schema-valid rate."""
        return (self.accuracy or 0.0, self.schema_valid_rate or 0.0)

    def summary(self) -> dict:
        return {"items": self.items, "schema_valid_rate": _round(self.schema_valid_rate),
                "accuracy": _round(self.accuracy), "field_accuracy": {k: _round(v) for k, v in self.field_accuracy.items()},
                "ece": _round(self.ece), "field_ece": {k: _round(v) for k, v in self.field_ece.items()},
                "mean_abs_error": {k: _round(v) for k, v in self.mean_abs_error.items()},
                "seconds": round(self.seconds, 2), "cached_prompt_share": _round(self.cached_prompt_share)}

    @property
    def cached_prompt_share(self) -> float | None:
        """Share of the prompt tokens the runtime already held (the shared start of the prompt)."""
        read = sum(p.prompt_tokens for p in self.per_item)
        return sum(p.cached_tokens for p in self.per_item) / read if read else None

    def to_dict(self) -> dict:
        return {**self.summary(), "per_item": [p.to_dict() for p in self.per_item]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> float | None:
    """Top-label ECE over equal-width confidence bins (None when nothing carries a confidence)."""
    if not confidences:
        return None
    total = len(confidences)
    ece = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidences) if (low < c <= high) or (b == 0 and c <= high)]
        if members:
            accuracy = sum(1.0 for i in members if correct[i]) / len(members)
            mean_conf = sum(confidences[i] for i in members) / len(members)
            ece += abs(accuracy - mean_conf) * len(members) / total
    return ece


def _field_confidences(prelabel: Any, fields: ScoredFields) -> dict[str, float]:
    """Per-field confidences from a pre-label: its own per-field map if the pre-labeler gives one,
    else its one confidence, for the class field."""
    out: dict[str, float] = {}
    per_field = getattr(prelabel, "field_confidence", None) or getattr(prelabel, "field_confidences", None)
    if isinstance(per_field, dict):
        for name, value in per_field.items():
            if name in fields.categorical and isinstance(value, (int, float)) and math.isfinite(value):
                out[name] = min(1.0, max(0.0, float(value)))
    confidence = getattr(prelabel, "confidence", None)
    if not out and fields.class_field and isinstance(confidence, (int, float)) and math.isfinite(confidence):
        out[fields.class_field] = min(1.0, max(0.0, float(confidence)))
    return out


def score_item(label_type: LabelType, template: templates.TemplateInfo, item: LabelledItem, prelabel: Any,
               fields: ScoredFields) -> ItemScore:
    """Compare one pre-label with the item's canonical label."""
    answer = getattr(prelabel, "answer", None)
    valid = False
    error = getattr(prelabel, "error", None)
    data: dict = {}
    if isinstance(answer, dict):
        problem = templates.first_error(template.output_schema, answer)
        if problem is None:
            data = templates.label_data_from_answer(label_type, answer)
            try:
                check_label_data(label_type, data)
                valid = True
            except ValidationError as exc:
                error = exc.message
        else:
            error = f"the answer does not match the output schema {problem}"
    correct = {f: bool(valid and f in item.expected and data.get(f) == item.expected[f])
               for f in fields.categorical if f in item.expected}
    abs_error = {}
    for name in fields.numeric:
        want, got = item.expected.get(name), data.get(name)
        if valid and isinstance(want, (int, float)) and isinstance(got, (int, float)):
            abs_error[name] = abs(float(want) - float(got))
    confidence = _field_confidences(prelabel, fields) if valid else {}
    return ItemScore(item.item_ref, valid, correct, {k: v for k, v in confidence.items() if k in correct},
                     abs_error, answer if isinstance(answer, dict) else None, error,
                     int(getattr(prelabel, "prompt_tokens", 0) or 0), int(getattr(prelabel, "cached_tokens", 0) or 0))


def aggregate(per_item: list[ItemScore], fields: ScoredFields, seconds: float = 0.0) -> TemplateScore:
    """The template's score from its per-item scores."""
    n = len(per_item)
    field_accuracy: dict[str, float] = {}
    field_ece: dict[str, float] = {}
    pooled_conf: list[float] = []
    pooled_ok: list[bool] = []
    for name in fields.categorical:
        scored = [p for p in per_item if name in p.correct]
        if not scored:
            continue
        field_accuracy[name] = sum(1 for p in scored if p.correct[name]) / len(scored)
        with_conf = [p for p in scored if name in p.confidence]
        ece = expected_calibration_error([p.confidence[name] for p in with_conf], [p.correct[name] for p in with_conf])
        if ece is not None:
            field_ece[name] = ece
            pooled_conf += [p.confidence[name] for p in with_conf]
            pooled_ok += [p.correct[name] for p in with_conf]
    mae = {}
    for name in fields.numeric:
        errors = [p.abs_error[name] for p in per_item if name in p.abs_error]
        if errors:
            mae[name] = sum(errors) / len(errors)
    accuracy = sum(field_accuracy.values()) / len(field_accuracy) if field_accuracy else None
    return TemplateScore(
        items=n, schema_valid_rate=(sum(1 for p in per_item if p.valid) / n) if n else None,
        field_accuracy=field_accuracy, accuracy=accuracy, ece=expected_calibration_error(pooled_conf, pooled_ok),
        field_ece=field_ece, mean_abs_error=mae, per_item=per_item, seconds=seconds,
    )


def default_mode(template: templates.TemplateInfo) -> str:
    """``both`` (the classifier's evidence, then the language model) for an image template, else ``llm``."""
    from vital_desktop.services import llm_evidence

    return "both" if llm_evidence.is_image_template(template) else "llm"


@dataclass(frozen=True)
class RunnerAnswer:
    """A `services.llm_answer.Answer` in the shape scoring reads (answer, confidences, error)."""

    answer: dict | None
    confidence: float | None
    field_confidence: dict[str, float]
    error: str | None
    raw_output: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0


class RunnerPrelabeler:
    """Scores through `services.llm_answer.TemplateRunner`: the same prompt, evidence and grammar
    as generation, with per-field confidences from the answer's token probabilities."""

    def __init__(self, store: Store, template: templates.TemplateInfo, mode: str | None) -> None:
        from vital_desktop.services import llm_answer, llm_evidence, predict

        mode = mode or default_mode(template)
        if mode not in EVAL_MODES:
            raise ValidationError(f"a template is evaluated with a language model: use --ai "
                                  f"{' or '.join(EVAL_MODES)}, not {mode!r}")
        ref = template.model_ref.get("gguf")
        self.llm, self.model = predict.llm_for(store, None if ref in (None, "", "default") else ref)
        # --ai llm on an image template: the model alone, without the classifier's evidence (an experiment).
        evidence: Any = None if (mode == "llm" and llm_evidence.is_image_template(template)) else llm_answer.AUTO
        self.runner = llm_answer.TemplateRunner(store, template, llm=self.llm, evidence=evidence)

    def prelabel(self, requests: Sequence[Any], progress: Progress) -> list[RunnerAnswer]:
        out = []
        for request in requests:
            progress.check()
            answer = self.runner.answer(request.item_ref, request.data, request.image_path, cancel=progress)
            out.append(RunnerAnswer(answer.data if answer.schema_valid else None, answer.confidence,
                                    dict(answer.field_confidence), answer.error, answer.raw_text,
                                    answer.prompt_tokens, answer.cached_tokens))
        return out


def make_prelabeler(store: Store, template: templates.TemplateInfo, mode: str | None) -> Any:
    """The language-model runner evaluation and optimisation score with."""
    from vital_desktop.services import llm_speed

    prelabeler = RunnerPrelabeler(store, template, mode)
    # A language model's first use here is also when its speed on this machine is measured.
    llm_speed.ensure_measured(store, prelabeler.model, prelabeler.llm)
    return prelabeler


def score_template(
    store: Store, template: templates.TemplateInfo, items: Sequence[LabelledItem], *,
    label_type: LabelType, prelabeler: Any, progress: Progress | None = None,
    deadline: float | None = None,
) -> TemplateScore | None:
    """Run `template` (through `prelabeler`) on every item and score the answers; None when the
    `deadline` (a `time.monotonic()` value) passed before every item was answered."""
    from vital_desktop.services.generate import PrelabelRequest

    progress = progress or Progress()
    fields = scored_fields(label_type, template.output_schema)
    started = time.perf_counter()
    per_item: list[ItemScore] = []
    for item in items:
        progress.check()
        if deadline is not None and time.monotonic() > deadline:
            return None
        [prelabel] = prelabeler.prelabel([PrelabelRequest(item.item_ref, item.data, item.image_path)], progress)
        per_item.append(score_item(label_type, template, item, prelabel, fields))
        progress.advance(1)
    return aggregate(per_item, fields, time.perf_counter() - started)


# --- stored evaluations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationInfo:
    id: str
    template_ref: str
    template_id: str
    sheet_name: str
    model: str
    purpose: str
    score: dict
    details: dict
    created_by: str
    created_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        s = self.score
        lines = [f"{self.template_ref} on {self.sheet_name!r} ({self.purpose}, model {self.model}): "
                 f"{s.get('items', 0)} labelled items"]
        lines.append(f"  schema-valid rate: {_pct(s.get('schema_valid_rate'))}")
        for name, value in (s.get("field_accuracy") or {}).items():
            ece = (s.get("field_ece") or {}).get(name)
            lines.append(f"  accuracy {name}: {_pct(value)}" + (f"  (ECE {ece:.3f})" if ece is not None else ""))
        for name, value in (s.get("mean_abs_error") or {}).items():
            lines.append(f"  mean absolute error {name}: {value:.3f}")
        ece_text = "n/a (no confidences)" if s.get("ece") is None else f"{float(s['ece']):.3f}"
        lines.append(f"  calibration error (ECE): {ece_text}")
        excluded = self.details.get("excluded") or {}
        if excluded:
            lines.append("  left out: " + ", ".join(f"{n} ({why})" for why, n in excluded.items()))
        return "\n".join(lines)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100.0 * float(value):.1f} %"


def _evaluation_info(row: TemplateEvaluation) -> EvaluationInfo:
    score = {"items": row.items, "schema_valid_rate": row.schema_valid_rate, "accuracy": row.accuracy,
             "field_accuracy": dict(row.field_accuracy or {}), "ece": row.ece,
             "field_ece": dict((row.details or {}).get("field_ece") or {}),
             "mean_abs_error": dict((row.details or {}).get("mean_abs_error") or {}), "seconds": row.seconds}
    return EvaluationInfo(row.id, f"{row.template_name}@{row.template_version}", row.template_id, row.sheet_name,
                          row.model, row.purpose, score, dict(row.details or {}), row.created_by, iso(row.created_at))


def model_label(store: Store, template: templates.TemplateInfo) -> str:
    """How an evaluation names the language model that answered (registry ``NAME@VERSION``)."""
    from vital_desktop.services import predict, registry

    ref = template.model_ref.get("gguf")
    try:
        model = predict.resolve_model(store, registry.KIND_GGUF, ref) if ref not in (None, "", "default") \
            else registry.active_model(store, registry.KIND_GGUF)
    except NotFoundError:
        return str(ref)
    return model.ref if model is not None else "bundled default"


def record_evaluation(
    session: Any, actor: User, template: templates.TemplateInfo, pool: LabelPool, score: TemplateScore, *,
    purpose: str, model: str, extra: dict | None = None,
) -> TemplateEvaluation:
    """Write one evaluation row (in the caller's transaction)."""
    summary = score.summary()
    row = TemplateEvaluation(
        id=new_id(), template_id=template.id, template_name=template.name, template_version=template.version,
        sheet_id=pool.sheet_id, sheet_name=pool.sheet_name, model=model, purpose=purpose, items=score.items,
        schema_valid_rate=score.schema_valid_rate, accuracy=score.accuracy, field_accuracy=summary["field_accuracy"],
        ece=score.ece, seconds=score.seconds, created_by=actor.username, created_at=utcnow(),
        details={"field_ece": summary["field_ece"], "mean_abs_error": summary["mean_abs_error"],
                 "excluded": pool.excluded, "per_item": [p.to_dict() for p in score.per_item], **(extra or {})},
    )
    session.add(row)
    return row


def evaluate_template(
    store: Store, *, actor: User, template: str, sheet: str, limit: int | None = None, ai_mode: str | None = None,
    progress: Progress | None = None, prelabeler_factory: PrelabelerFactory | None = None,
) -> tuple[EvaluationInfo, Changes]:
    """Score `template` (``NAME`` or ``NAME@VERSION``, draft or published) on the sheet's
    evaluation-allowed canonical labels (the first `limit` items) and store the result with
    the version. `prelabeler_factory` replaces the generation pre-labeler (tests)."""
    require(actor, "generate")
    progress = progress or Progress()
    if limit is not None and int(limit) < 1:
        raise ValidationError("--limit must be a positive number of items")
    info = templates.get_template(store, template)
    label_type = templates.template_label_type(store, info)
    pool = label_pool(store, sheet=sheet, label_type=info.label_type)
    items = pool.evaluation[: int(limit)] if limit is not None else pool.evaluation
    if not items:
        left_out = "; ".join(f"{n} left out: {why}" for why, n in pool.excluded.items())
        raise ValidationError(
            f"sheet {pool.sheet_name!r} has no canonical {info.label_type} labels whose usage allows evaluation, "
            f"so {info.ref} cannot be scored there" + (f" ({left_out})" if left_out else "")
            + "; label some items first (vital label set) or allow evaluation on their labels")
    with store.read() as s:
        columns = list(s.scalar(sa.select(Sheet.columns).where(Sheet.id == pool.sheet_id)) or [])
    templates.check_against_columns(info, columns)
    factory = prelabeler_factory or (lambda st, t: make_prelabeler(st, t, ai_mode))
    prelabeler = factory(store, info)
    progress.start(len(items), f"evaluating {info.ref} on {len(items)} labelled items")
    score = score_template(store, info, items, label_type=label_type, prelabeler=prelabeler, progress=progress)
    assert score is not None  # no deadline
    model = model_label(store, info)
    with store.session() as s:
        row = record_evaluation(s, actor, info, pool, score, purpose="evaluate", model=model,
                                extra={"limit": limit, "mode": ai_mode or default_mode(info)})
        s.flush()
        audit.record(s, actor, "template.evaluate", info.ref,
                     {"sheet": pool.sheet_name, "items": score.items, "accuracy": _round(score.accuracy),
                      "schema_valid_rate": _round(score.schema_valid_rate), "ece": _round(score.ece)})
        result = _evaluation_info(row)
    progress.finish(f"{info.ref}: accuracy {_pct(score.accuracy)}")
    return result, Changes(templates=True)


def list_evaluations(store: Store, *, template: str | None = None, sheet: str | None = None,
                     purpose: str | None = None) -> list[EvaluationInfo]:
    """Stored evaluations, newest first; `template` is ``NAME`` (every version) or ``NAME@VERSION``."""
    with store.read() as s:
        query = sa.select(TemplateEvaluation).order_by(TemplateEvaluation.created_at.desc())
        if template:
            name, version = templates.split_ref(template)
            query = query.where(TemplateEvaluation.template_name == name)
            if version:
                query = query.where(TemplateEvaluation.template_version == version)
        if sheet:
            query = query.where(sa.or_(TemplateEvaluation.sheet_name == sheet, TemplateEvaluation.sheet_id == sheet))
        if purpose:
            query = query.where(TemplateEvaluation.purpose == purpose)
        return [_evaluation_info(r) for r in s.scalars(query)]


def latest_evaluations(store: Store) -> dict[str, EvaluationInfo]:
    """The newest stored evaluation of each template version (``NAME@VERSION`` → evaluation)."""
    out: dict[str, EvaluationInfo] = {}
    for info in list_evaluations(store):
        out.setdefault(info.template_ref, info)
    return out

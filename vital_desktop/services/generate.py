"""GENERATE → LABEL: training sheets, the snapshot of a sheet × one published template version.

For every item the template is rendered into chat messages (system, user text, image
reference, sensor context; see `inference.prompts`). Then the star rule of the product:

- if a canonical label exists for ``(sheet, item, template.label_type)``, the answer *is* the
  label: the pair is ``labeled``, source ``canonical``, with the label's id, version and usage
  constraints — pre-approved, nobody reviews it again;
- otherwise a pre-labeler (none, the ONNX classifier, the LLM, or both) proposes an answer with
  a confidence and the pair stays ``unlabeled`` for review. A proposal that fails the output
  schema is kept with its raw text and the error, never dropped.

Pairs are written in batches through the Arrow bulk path, one transaction per batch, so a
cancelled or crashed generation keeps what it finished and ``resume=True`` continues it.

Pre-labelers are entries in `PRELABELERS` (name → factory), so the generation logic never
imports llama.cpp or onnxruntime unless a mode needs them, and tests can pass a fake.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import pyarrow as pa
import sqlalchemy as sa

from vital_desktop.core import governance
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import Cancelled, ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_id, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.inference import prompts
from vital_desktop.services import templates
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.bulk import insert_arrow, query_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import QAPair, Sheet, TrainingSheet

AI_MODES = ("none", "classifier", "llm", "both")
PAIR_STATUSES = ("unlabeled", "labeled", "rejected", "flagged")
#: Items per committed batch. Small for slow pre-labelers so a cancel loses little work.
BATCH_SIZES = {"none": 20_000, "classifier": 512, "llm": 8, "both": 8}
JSON_COLUMNS = ("messages", "answer", "allowed_uses", "prohibited_uses", "data_classification")


# --- pre-labelers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrelabelRequest:
    """One item a pre-labeler must answer: its data, its image file, and the rendered prompt."""

    item_ref: str
    data: dict
    image_path: str | None  # absolute path of the image, if the sheet has images


@dataclass(frozen=True)
class Prelabel:
    """A proposed answer (None when there is none) with where it came from and what went wrong."""

    answer: dict | None
    confidence: float | None
    source: str
    raw_output: str | None = None
    error: str | None = None
    classifier: prompts.ClassifierSummary | None = None


class Prelabeler(Protocol):
    """Proposes answers for a batch of items (results in the same order)."""

    def prelabel(self, requests: Sequence[PrelabelRequest], progress: Progress) -> list[Prelabel]: ...


PrelabelerFactory = Callable[[Store, templates.TemplateInfo], Prelabeler]


class NoPrelabeler:
    """AI off: items without a canonical label wait for an expert with no proposal."""

    def prelabel(self, requests: Sequence[PrelabelRequest], progress: Progress) -> list[Prelabel]:
        return [Prelabel(None, None, "none") for _ in requests]


def _answer_confidence(answer: Any) -> float | None:
    value = answer.get("confidence") if isinstance(answer, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class ClassifierPrelabeler:
    """The template's (or the site's active) ONNX classifier fills the label type's class field."""

    def __init__(self, store: Store, template: templates.TemplateInfo) -> None:
        from vital_desktop.services import labels, predict, registry

        self.template = template
        self.class_field = labels.get_label_type(store, template.label_type).class_field
        if not self.class_field:
            raise ValidationError(f"label type {template.label_type!r} has no class field, so a classifier cannot "
                                  "pre-label it; use --ai llm or none")
        self.model = predict.resolve_model(store, registry.KIND_ONNX, template.model_ref.get("classifier"))
        self.classifier = predict.classifier_for(self.model, predict.inference_threads(store))
        self.with_confidence = "confidence" in template.output_schema.get("properties", {})

    def prelabel(self, requests: Sequence[PrelabelRequest], progress: Progress) -> list[Prelabel]:
        out: list[Prelabel | None] = [None] * len(requests)
        with_image = [i for i, r in enumerate(requests) if r.image_path]
        for i, request in enumerate(requests):
            if not request.image_path:
                out[i] = Prelabel(None, None, "classifier", error="the item has no image to classify")
        results = self.classifier.predict_paths([requests[i].image_path for i in with_image], batch_size=64)  # type: ignore[misc]
        for i, result in zip(with_image, results, strict=False):
            if result.error is not None or result.predicted_class is None:
                out[i] = Prelabel(None, None, "classifier", error=result.error or "no prediction")
                continue
            answer: dict[str, Any] = {self.class_field: result.predicted_class}
            if self.with_confidence:
                answer["confidence"] = round(float(result.confidence or 0.0), 4)
            summary = prompts.ClassifierSummary(self.model.name, self.model.version, result.predicted_class,
                                                float(result.confidence or 0.0), result.probabilities)
            problem = templates.first_error(self.template.output_schema, answer)
            if problem:
                out[i] = Prelabel(None, result.confidence, "classifier", raw_output=json.dumps(answer),
                                  error=f"the classifier's answer does not match the output schema {problem}",
                                  classifier=summary)
            else:
                out[i] = Prelabel(answer, result.confidence, "classifier", classifier=summary)
        return [p for p in out if p is not None]


class LlmPrelabeler:
    """The template's GGUF model answers each item under the output schema's grammar."""

    def __init__(self, store: Store, template: templates.TemplateInfo, *, with_classifier: bool = False) -> None:
        from vital_desktop.services import predict

        self.template = template
        ref = template.model_ref.get("gguf")
        self.llm, self.model = predict.llm_for(store, None if ref in (None, "", "default") else ref)
        self.max_tokens = int(template.model_ref.get("max_tokens", 128))
        self.temperature = float(template.model_ref.get("temperature", 0.0))
        self.prompt_template = prompt_template(template)
        self.context_fields = context_fields(template)
        self.classifier = ClassifierPrelabeler(store, template) if with_classifier else None

    def prelabel(self, requests: Sequence[PrelabelRequest], progress: Progress) -> list[Prelabel]:
        first = self.classifier.prelabel(requests, progress) if self.classifier is not None else [None] * len(requests)
        out = []
        for request, from_classifier in zip(requests, first, strict=False):
            progress.check()
            summary = from_classifier.classifier if from_classifier is not None else None
            rendered = prompts.render_messages(
                self.prompt_template,
                prompts.PromptItem(request.item_ref, request.data, request.image_path),
                classifier=summary, context_fields=self.context_fields,
            )
            result = self.llm.generate_structured(
                rendered.text_messages, self.template.output_schema, max_tokens=self.max_tokens,
                temperature=self.temperature, cancel=progress.cancel, template_name=self.template.ref,
                item_ref=request.item_ref,
            )
            source = "llm+classifier" if self.classifier is not None else "llm"
            if result.valid:
                confidence = _answer_confidence(result.parsed)
                if confidence is None and from_classifier is not None:
                    confidence = from_classifier.confidence
                out.append(Prelabel(result.parsed, confidence, source, raw_output=result.text, classifier=summary))
            elif from_classifier is not None and from_classifier.answer is not None:
                # The model failed; the classifier's answer is still worth reviewing. Keep both.
                out.append(Prelabel(from_classifier.answer, from_classifier.confidence, "classifier",
                                    raw_output=" | ".join(result.raw_attempts), error=f"llm: {result.error}",
                                    classifier=summary))
            else:
                out.append(Prelabel(None, None, source, raw_output=" | ".join(result.raw_attempts),
                                    error=result.error, classifier=summary))
        return out


#: ai_mode → factory. The generation code looks modes up here; it never branches on them.
PRELABELERS: dict[str, PrelabelerFactory] = {
    "none": lambda store, template: NoPrelabeler(),
    "classifier": ClassifierPrelabeler,
    "llm": LlmPrelabeler,
    "both": lambda store, template: LlmPrelabeler(store, template, with_classifier=True),
}


# --- plain results -------------------------------------------------------------------------------


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


# --- rendering helpers (shared with review's preview) ----------------------------------------------


def prompt_template(template: templates.TemplateInfo) -> prompts.PromptTemplate:
    return prompts.PromptTemplate(template.name, template.version, template.system_prompt, template.user_prompt,
                                  template.output_schema, tuple(template.few_shot))


def context_fields(template: templates.TemplateInfo) -> list[str]:
    """Sensor context shown beside the image: input-schema fields the user prompt does not already name."""
    named = {p.split(".")[0] for p in template.placeholders}
    return [f for f in template.input_schema.get("properties", {}) if f not in named and f != "image_path"]


class MessageRenderer:
    """Renders every item of one template, fast: the system message and few-shot turns are the same
    for every item (`prompts` builds them from the template alone), so they are rendered and encoded
    once; per item only the user message is rendered, by the same `prompts.render_messages`."""

    def __init__(self, template: templates.TemplateInfo) -> None:
        self.full = prompt_template(template)
        # Same user prompt, nothing else: its last message is exactly the full render's last message.
        self.user_only = prompts.PromptTemplate(template.name, template.version, "-", template.user_prompt, None, ())
        self.context_fields = context_fields(template)
        self._prefix_json: str | None = None

    def messages_json(self, item: prompts.PromptItem, classifier: prompts.ClassifierSummary | None = None) -> str:
        """The item's messages as JSON text. Give `item.image_path` as a ``file://`` URI (see `image_uri`):
        `prompts` keeps a URI as it is, while it would resolve a path on disk for every item."""
        if self._prefix_json is None:
            messages = prompts.render_messages(self.full, item, classifier=classifier,
                                               context_fields=self.context_fields).messages
            self._prefix_json = json.dumps(messages[:-1], ensure_ascii=False)
            return json.dumps(messages, ensure_ascii=False)
        user = prompts.render_messages(self.user_only, item, classifier=classifier,
                                       context_fields=self.context_fields).messages[-1]
        return f"{self._prefix_json[:-1]}, {json.dumps(user, ensure_ascii=False)}]"


def image_uri(root_uri: str, relative: str) -> str:
    """``file://`` URI of an image below the sheet's (already resolved) image folder, without a
    filesystem call per item: the same text `Path.as_uri` gives."""
    return f"{root_uri}/{quote(relative)}"


def render_item(template: templates.TemplateInfo, item_ref: str, data: dict, image_path: str | None,
                classifier: prompts.ClassifierSummary | None = None) -> list[dict]:
    """The stored chat messages of one item (what a reviewer sees, what the model saw)."""
    return prompts.render_messages(prompt_template(template), prompts.PromptItem(item_ref, data, image_path),
                                   classifier=classifier, context_fields=context_fields(template)).messages


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
            sheet_row = s.scalar(sa.select(Sheet).where(sa.or_(Sheet.name == sheet, Sheet.id == sheet)))
            if sheet_row is None:
                raise NotFoundError(f"no sheet named {sheet!r}")
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


# --- generation ------------------------------------------------------------------------------------


@dataclass
class _Plan:
    training_sheet_id: str
    sheet: Sheet
    template: templates.TemplateInfo
    ai_mode: str
    name: str
    total: int
    resumed: bool
    extra: dict = field(default_factory=dict)


def _plan(store: Store, actor: User, *, sheet: str | None, template: str | None, name: str, ai_mode: str | None,
          resume: bool) -> _Plan:
    """Resolve and check everything before anything is written."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("a training sheet needs a name (--name)")
    with store.read() as s:
        existing = s.scalar(sa.select(TrainingSheet).where(TrainingSheet.name == name))
        if existing is not None and not resume:
            hint = (" (it did not finish: add --resume to continue it)" if existing.status != "complete" else "")
            raise ConflictError(f"a training sheet named {name!r} already exists{hint}")
        if resume:
            if existing is None:
                raise NotFoundError(f"no training sheet named {name!r} to resume")
            if existing.status == "complete":
                raise ConflictError(f"training sheet {name!r} is complete; there is nothing to resume")
            sheet_row = s.get(Sheet, existing.sheet_id)
            if sheet_row is None:
                raise NotFoundError(f"the sheet of training sheet {name!r} no longer exists")
            if sheet is not None and sheet not in (sheet_row.name, sheet_row.id):
                raise ValidationError(f"training sheet {name!r} was generated from sheet {sheet_row.name!r}, not {sheet!r}")
            tmpl = templates.get_template_by_id(store, existing.template_id)
            if template is not None:
                wanted = templates.resolve(s, template)
                if wanted.id != tmpl.id:
                    raise ValidationError(f"training sheet {name!r} uses template {tmpl.ref}, not {wanted.name}@{wanted.version}")
            if ai_mode is not None and ai_mode != existing.ai_mode:
                raise ValidationError(f"training sheet {name!r} was started with --ai {existing.ai_mode}")
            return _Plan(existing.id, sheet_row, tmpl, existing.ai_mode, name, existing.total_items, True)
        if not sheet:
            raise ValidationError("say which sheet to generate from (--sheet)")
        if not template:
            raise ValidationError("say which template to use (--template NAME[@VERSION])")
        sheet_row = s.scalar(sa.select(Sheet).where(sa.or_(Sheet.name == sheet, Sheet.id == sheet)))
        if sheet_row is None:
            names = s.scalars(sa.select(Sheet.name).order_by(Sheet.name)).all()
            raise NotFoundError(f"no sheet named {sheet!r}" + (f"; sheets here: {', '.join(names)}" if names else ""))
        tmpl = templates._info(templates.resolve(s, template, published_only=True))
        templates.check_fits_current_label_type(s, tmpl)  # refuses a template made for another version
    ai_mode = ai_mode or "none"
    if ai_mode not in PRELABELERS:
        raise ValidationError(f"unknown AI mode {ai_mode!r}; use {', '.join(PRELABELERS)}")
    templates.check_against_columns(tmpl, list(sheet_row.columns or []))
    return _Plan(new_id(), sheet_row, tmpl, ai_mode, name, int(sheet_row.item_count), False)


def generate_training_sheet(
    store: Store,
    *,
    actor: User,
    sheet: str | None,
    template: str | None,
    name: str,
    ai_mode: str | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    prelabeler: Prelabeler | None = None,
) -> tuple[GenerationResult, Changes]:
    """Snapshot sheet × template version into the training sheet `name` (see the module docstring).

    `template` is ``NAME`` (its latest published version) or ``NAME@VERSION`` (published).
    `prelabeler` overrides the registry entry for `ai_mode` (tests, or a caller holding a model).
    On cancel the finished batches are kept, the training sheet is marked ``cancelled`` and
    `Cancelled` is raised; ``resume=True`` with the same name continues where it stopped.
    """
    import time

    require(actor, "generate")
    started = time.perf_counter()
    progress = progress or Progress()
    plan = _plan(store, actor, sheet=sheet, template=template, name=name, ai_mode=ai_mode, resume=resume)
    labeler = prelabeler if prelabeler is not None else PRELABELERS[plan.ai_mode](store, plan.template)
    tmpl = plan.template
    now = utcnow()
    if not plan.resumed:
        with store.session() as s:
            s.add(TrainingSheet(
                id=plan.training_sheet_id, name=plan.name, sheet_id=plan.sheet.id, template_id=tmpl.id,
                template_name=tmpl.name, template_version=tmpl.version, label_type=tmpl.label_type,
                ai_mode=plan.ai_mode, status="generating", total_items=plan.total,
                config={"sheet": plan.sheet.name, "template": tmpl.ref, "ai_mode": plan.ai_mode,
                        "classification": list(plan.sheet.classification or [])},
                created_by=actor.username, created_at=now,
            ))
            audit.record(s, actor, "generate.start", plan.name,
                         {"sheet": plan.sheet.name, "template": tmpl.ref, "ai_mode": plan.ai_mode, "items": plan.total})
    else:
        with store.session() as s:
            s.execute(sa.update(TrainingSheet).where(TrainingSheet.id == plan.training_sheet_id)
                      .values(status="generating"))
            audit.record(s, actor, "generate.resume", plan.name, {})

    with store.read() as s:
        pending = query_arrow(s, (
            "SELECT i.item_ref, i.position, i.image_path, i.metadata::VARCHAR AS metadata, "
            "c.id AS label_id, c.version AS label_version, c.label_data::VARCHAR AS label_data, "
            "c.allowed_uses::VARCHAR AS allowed_uses, c.prohibited_uses::VARCHAR AS prohibited_uses, "
            "c.usage_reason, c.data_classification::VARCHAR AS data_classification, c.review_state "
            "FROM sheet_items i LEFT JOIN canonical_labels c "
            "ON c.sheet_id = i.sheet_id AND c.item_ref = i.item_ref AND c.label_type = ? "
            "WHERE i.sheet_id = ? AND NOT EXISTS (SELECT 1 FROM qa_pairs q "
            "WHERE q.training_sheet_id = ? AND q.item_ref = i.item_ref) ORDER BY i.position"),
            [tmpl.label_type, plan.sheet.id, plan.training_sheet_id]).to_pylist()
    already = plan.total - len(pending)
    progress.start(plan.total, f"generating {plan.total} Q&A pairs with {tmpl.ref}")
    progress.set(already)

    tags = list(plan.sheet.classification or [])
    ai_allowed, ai_prohibited, ai_reason = governance.apply_classification(tags, None, None)
    ai_uses = (json.dumps(ai_allowed), json.dumps(ai_prohibited), ai_reason)
    tags_text = json.dumps(tags)
    root = Path(plan.sheet.image_root) if plan.sheet.image_root else None
    renderer = MessageRenderer(tmpl)
    batch_size = BATCH_SIZES.get(plan.ai_mode, 512)
    written = 0
    try:
        for start in range(0, len(pending), batch_size):
            progress.check()
            batch = pending[start:start + batch_size]
            rows = _build_rows(plan.training_sheet_id, batch, labeler, renderer, root, ai_uses, tags_text, progress)
            with store.session() as s:
                insert_arrow(s, "qa_pairs", rows, casts={c: "JSON" for c in JSON_COLUMNS})
            written += rows.num_rows
            progress.advance(rows.num_rows)
    except Cancelled:
        with store.session() as s:
            s.execute(sa.update(TrainingSheet).where(TrainingSheet.id == plan.training_sheet_id).values(status="cancelled"))
            audit.record(s, actor, "generate.cancelled", plan.name, {"written": already + written, "total": plan.total})
        raise Cancelled(f"generation of {plan.name!r} cancelled: {already + written} of {plan.total} pairs kept; "
                        "run it again with --resume to continue") from None
    except BaseException:
        with store.session() as s:
            s.execute(sa.update(TrainingSheet).where(TrainingSheet.id == plan.training_sheet_id).values(status="failed"))
        raise
    with store.session() as s:
        s.execute(sa.update(TrainingSheet).where(TrainingSheet.id == plan.training_sheet_id)
                  .values(status="complete", completed_at=utcnow()))
        s.expire_all()
        row = s.get(TrainingSheet, plan.training_sheet_id)
        result_summary = _summary(s, row)
        audit.record(s, actor, "generate.complete", plan.name, result_summary.to_dict())
        info = _ts_info(row, plan.sheet.name)
    progress.finish(f"generated {plan.total} pairs: {result_summary.pre_approved} pre-approved")
    return (GenerationResult(info, result_summary, written, time.perf_counter() - started),
            Changes(training_sheets=True, pairs=True))


def _build_rows(training_sheet_id: str, batch: list[dict], labeler: Prelabeler, renderer: MessageRenderer,
                root: Path | None, ai_uses: tuple[str, str, str], tags_text: str, progress: Progress) -> pa.Table:
    """One batch of pair rows: canonical answers for labeled items, pre-labels for the rest."""
    now = utcnow()
    datas = [json.loads(r["metadata"]) for r in batch]
    images = [str(root / r["image_path"]) if (root is not None and r["image_path"]) else None for r in batch]
    root_uri = root.as_uri() if root is not None else ""
    uris = [image_uri(root_uri, r["image_path"]) if (root is not None and r["image_path"]) else None for r in batch]
    todo = [i for i, r in enumerate(batch) if r["label_id"] is None]
    prelabels: dict[int, Prelabel] = {}
    if todo:
        requests = [PrelabelRequest(batch[i]["item_ref"], datas[i], images[i]) for i in todo]
        prelabels = dict(zip(todo, labeler.prelabel(requests, progress), strict=False))
    columns: dict[str, list] = {k: [] for k in (
        "id", "training_sheet_id", "item_ref", "position", "messages", "answer", "raw_output", "ai_error", "status",
        "source", "confidence", "canonical_label_id", "canonical_label_version", "allowed_uses", "prohibited_uses",
        "usage_reason", "data_classification", "review_reason", "created_at")}
    for i, r in enumerate(batch):
        pre = prelabels.get(i)
        columns["id"].append(new_id())
        columns["item_ref"].append(r["item_ref"])
        columns["position"].append(r["position"])
        columns["messages"].append(renderer.messages_json(prompts.PromptItem(r["item_ref"], datas[i], uris[i]),
                                                          pre.classifier if pre else None))
        if pre is None:  # a canonical label exists: pre-approved, unless experts disagree about it
            disputed = r["review_state"] == "conflict"
            columns["answer"].append(r["label_data"])
            columns["raw_output"].append(None)
            columns["ai_error"].append(None)
            # A disputed label is held for review (flagged), so it cannot pass the quality gate
            # into training until the conflict is resolved.
            columns["status"].append("flagged" if disputed else "labeled")
            columns["source"].append("canonical")
            columns["confidence"].append(None)
            columns["canonical_label_id"].append(r["label_id"])
            columns["canonical_label_version"].append(r["label_version"])
            columns["allowed_uses"].append(r["allowed_uses"])
            columns["prohibited_uses"].append(r["prohibited_uses"])
            columns["usage_reason"].append(r["usage_reason"])
            columns["data_classification"].append(r["data_classification"])
            columns["review_reason"].append(
                f"canonical label v{r['label_version']} has an open conflict: resolve it (vital label conflicts) "
                "before this pair can be used" if disputed else "")
        else:
            columns["answer"].append(json.dumps(pre.answer, ensure_ascii=False))
            columns["raw_output"].append(pre.raw_output)
            columns["ai_error"].append(pre.error)
            columns["status"].append("unlabeled")
            columns["source"].append(pre.source)
            columns["confidence"].append(pre.confidence)
            columns["canonical_label_id"].append(None)
            columns["canonical_label_version"].append(None)
            columns["allowed_uses"].append(ai_uses[0])
            columns["prohibited_uses"].append(ai_uses[1])
            columns["usage_reason"].append(ai_uses[2])
            columns["data_classification"].append(tags_text)
            columns["review_reason"].append("")
    n = len(batch)
    columns["training_sheet_id"] = [training_sheet_id] * n
    columns["created_at"] = [now] * n
    return pa.table({
        **{k: v for k, v in columns.items() if k not in ("confidence", "canonical_label_version", "position")},
        "position": pa.array(columns["position"], pa.int32()),
        "confidence": pa.array(columns["confidence"], pa.float64()),
        "canonical_label_version": pa.array(columns["canonical_label_version"], pa.int32()),
    })

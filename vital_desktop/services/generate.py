"""GENERATE → LABEL: training sheets, the snapshot of a sheet × one published template version.

For every item the template is rendered into chat messages (system, user text, image
reference, sensor context and evidence; see `inference.prompts`). Then the star rule of the
product:

- if a canonical label exists for ``(sheet, item, template.label_type)``, the answer *is* the
  label: the pair is ``labeled``, source ``canonical``, with the label's id, version and usage
  constraints — pre-approved, nobody reviews it again;
- otherwise a pre-labeler (none, the ONNX classifier, the LLM, or both; `generate_prelabel`)
  proposes an answer with a confidence (per field for the language model) and the pair stays
  ``unlabeled`` for review. A proposal that fails the output schema is kept with its raw text
  and the error, never dropped.

Constant memory: pending items stream from the store in pages (keyset on the item position) and
pairs are written per page through the Arrow bulk path, one transaction per page — nothing holds
the whole list of pending rows, and a cancelled or crashed generation keeps what it finished
(``resume=True`` continues it). ``limit=N`` is a trial run: it stops after the first N items that
need a pre-label (canonical items before them are written too), leaving the training sheet
``partial`` for a later ``resume``. Progress counts the items of this run, moves per item for
slow pre-labelers, and its message carries the rate and the time left.

This module keeps the historical public names importable (`Prelabel`, `MessageRenderer`,
`render_item`, `GenerationSummary`, …) from the modules they now live in.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from vital_desktop.core import governance
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import Cancelled, ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.core.progress import Progress, format_eta
from vital_desktop.core.users import User
from vital_desktop.inference import prompts
from vital_desktop.services import templates
from vital_desktop.services.accounts import require
from vital_desktop.services.generate_prelabel import (
    PRELABELERS,
    ClassifierPrelabeler,
    LlmPrelabeler,
    NoPrelabeler,
    Prelabel,
    Prelabeler,
    PrelabelerFactory,
    PrelabelRequest,
)
from vital_desktop.services.generate_render import MessageRenderer, context_fields, image_uri, prompt_template, render_item
from vital_desktop.services.generate_sheets import (
    GenerationResult,
    GenerationSummary,
    TrainingSheetInfo,
    _find_training_sheet,
    _summary,
    _ts_info,
    get_training_sheet,
    list_training_sheets,
    summary,
)
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store import audit
from vital_desktop.store.bulk import insert_arrow, query_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import Sheet, TrainingSheet

AI_MODES = ("none", "classifier", "llm", "both")
PAIR_STATUSES = ("unlabeled", "labeled", "rejected", "flagged")
#: Items per page read and committed. Small for slow pre-labelers so a cancel loses little work;
#: bounded for the fast path so memory stays flat whatever the sheet's size.
BATCH_SIZES = {"none": 2_000, "classifier": 512, "llm": 8, "both": 8}
JSON_COLUMNS = ("messages", "answer", "allowed_uses", "prohibited_uses", "data_classification",
                "field_confidence", "evidence")
__all__ = [
    "AI_MODES", "BATCH_SIZES", "PAIR_STATUSES", "PRELABELERS", "ClassifierPrelabeler", "GenerationResult",
    "GenerationSummary", "LlmPrelabeler", "MessageRenderer", "NoPrelabeler", "Prelabel", "PrelabelRequest",
    "Prelabeler", "PrelabelerFactory", "TrainingSheetInfo", "context_fields", "generate_training_sheet",
    "get_training_sheet", "image_uri", "list_training_sheets", "prompt_template", "render_item", "summary",
    "_find_training_sheet",
]
#: DuckDB's buffer pool keeps every page it read or wrote cached up to its memory limit (80 % of the
#: machine's memory by default), so a 100,000-item generation of the demo template peaked at ~600 MB
#: although it holds one page of rows at a time. While a generation runs the limit is lowered to this
#: (queries that need more spill to the store's temporary folder); measured: the 100k peak fell to ~340 MB.
GENERATION_MEMORY_LIMIT = "128MB"
#: Status of a training sheet a trial run (``limit``) stopped early; ``resume`` continues it.
STATUS_PARTIAL = "partial"

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
        sheet_row = find_sheet(s, sheet)
        tmpl = templates._info(templates.resolve(s, template, published_only=True))
        templates.check_fits_current_label_type(s, tmpl)  # refuses a template made for another version
    ai_mode = ai_mode or "none"
    if ai_mode not in PRELABELERS:
        raise ValidationError(f"unknown AI mode {ai_mode!r}; use {', '.join(PRELABELERS)}")
    templates.check_against_columns(tmpl, list(sheet_row.columns or []))
    return _Plan(new_id(), sheet_row, tmpl, ai_mode, name, int(sheet_row.item_count), False)


_ITEMS_FROM = (
    "FROM sheet_items i LEFT JOIN canonical_labels c "
    "ON c.sheet_id = i.sheet_id AND c.item_ref = i.item_ref AND c.label_type = ? "
    "WHERE i.sheet_id = ?"
)
_NOT_DONE = " AND NOT EXISTS (SELECT 1 FROM qa_pairs q WHERE q.training_sheet_id = ? AND q.item_ref = i.item_ref)"


def _pending(plan: _Plan) -> tuple[str, list[Any]]:
    """FROM … WHERE of the items this training sheet still lacks, and its parameters. A new training
    sheet has no pairs yet, so it skips the anti-join (the keyset paging never revisits an item)."""
    params: list[Any] = [plan.template.label_type, plan.sheet.id]
    if not plan.resumed:
        return _ITEMS_FROM, params
    return _ITEMS_FROM + _NOT_DONE, [*params, plan.training_sheet_id]
_PENDING_COLUMNS = (
    "SELECT i.item_ref, i.position, i.image_path, i.metadata::VARCHAR AS metadata, "
    "c.id AS label_id, c.version AS label_version, c.label_data::VARCHAR AS label_data, "
    "c.allowed_uses::VARCHAR AS allowed_uses, c.prohibited_uses::VARCHAR AS prohibited_uses, "
    "c.usage_reason, c.data_classification::VARCHAR AS data_classification, c.review_state "
)


@dataclass(frozen=True)
class _Scope:
    """What this run will write: how many items, and the last position a trial run reaches."""

    items: int  # pending items this run writes (canonical ones included)
    to_prelabel: int  # of which need a pre-label
    last_position: int | None  # None: every pending item
    limited: bool  # a trial run that stops before the end
    pending: int  # every pending item (what a run without a limit would write)


def _scope(store: Store, plan: _Plan, limit: int | None) -> _Scope:
    """Count the run's items in SQL (no rows are held): all pending items, or up to the `limit`-th one
    that needs a pre-label."""
    pending_from, params = _pending(plan)
    with store.read() as s:
        raw = query_arrow(s, f"SELECT count(*) AS n, count(*) FILTER (WHERE c.id IS NULL) AS todo {pending_from}",
                          params).to_pylist()[0]
        pending, todo = int(raw["n"]), int(raw["todo"])
        if limit is None or limit >= todo:
            return _Scope(pending, todo, None, False, pending)
        cut = query_arrow(s, f"SELECT i.position AS p {pending_from} AND c.id IS NULL ORDER BY i.position "
                             f"LIMIT 1 OFFSET {int(limit) - 1}", params).to_pylist()
        last = int(cut[0]["p"])
        items = query_arrow(s, f"SELECT count(*) AS n {pending_from} AND i.position <= ?",
                            [*params, last]).to_pylist()[0]["n"]
    return _Scope(int(items), int(limit), last, True, pending)


def _pending_pages(store: Store, plan: _Plan, batch_size: int, last_position: int | None) -> Any:
    """Yield pages of pending rows in position order (keyset paging: one page in memory at a time)."""
    after: tuple[int, str] | None = None
    pending_from, params = _pending(plan)
    while True:
        where = ""
        extra: list[Any] = []
        if after is not None:
            where += " AND (i.position > ? OR (i.position = ? AND i.item_ref > ?))"
            extra += [after[0], after[0], after[1]]
        if last_position is not None:
            where += " AND i.position <= ?"
            extra.append(last_position)
        with store.read() as s:
            page = query_arrow(s, f"{_PENDING_COLUMNS}{pending_from}{where} ORDER BY i.position, i.item_ref "
                                  f"LIMIT {int(batch_size)}", params + extra).to_pylist()
        if not page:
            return
        yield page
        after = (int(page[-1]["position"]), str(page[-1]["item_ref"]))
        if len(page) < batch_size:
            return


_memory_lock = threading.Lock()
_memory_state: dict[str, Any] = {"users": 0, "saved": None}


@contextmanager
def _bounded_store_memory(store: Store) -> Iterator[None]:
    """Lower DuckDB's memory limit (a setting of the whole database) while generations run; the last
    one to finish restores what was set before."""
    with _memory_lock:
        if _memory_state["users"] == 0:
            with store.session() as s:
                _memory_state["saved"] = s.execute(sa.text("SELECT current_setting('memory_limit')")).scalar()
                s.execute(sa.text(f"SET memory_limit = '{GENERATION_MEMORY_LIMIT}'"))
        _memory_state["users"] += 1
    try:
        yield
    finally:
        with _memory_lock:
            _memory_state["users"] -= 1
            if _memory_state["users"] == 0 and _memory_state["saved"]:
                saved = str(_memory_state["saved"]).replace("'", "")
                with store.session() as s:
                    s.execute(sa.text(f"SET memory_limit = '{saved}'"))


class _RunProgress:
    """The run's own progress text: items done, rate and time left, measured on this run's items."""

    def __init__(self, progress: Progress, total: int, what: str) -> None:
        self.progress = progress
        self.total = total
        self.what = what
        self.started = time.perf_counter()
        self.done = 0

    def message(self, done: int) -> str:
        """``"12 of 40 items, 0.33 items/s, about 1 min 25 s left"`` (numbers first: a status bar cuts the end)."""
        elapsed = time.perf_counter() - self.started
        if done <= 0 or elapsed <= 0:
            return f"0 of {self.total} items, {self.what}"
        rate = done / elapsed
        left = (self.total - done) / rate if done < self.total else None
        eta = format_eta(left)
        speed = f"{rate:.2f} items/s" if rate < 10 else f"{rate:.0f} items/s"
        return f"{done} of {self.total} items, {speed}" + (f", about {eta} left" if eta else "")


class _ItemProgress(Progress):
    """Hands a pre-labeler's per-item `advance` on to the run's progress with the rate text."""

    def __init__(self, run: _RunProgress, base: int) -> None:
        super().__init__(cancel=run.progress.cancel)
        self.run = run
        self.base = base
        self.count = 0

    def advance(self, n: int = 1, message: str | None = None) -> None:
        self.count += int(n)
        done = self.base + self.count
        self.run.progress.set(done, self.run.message(done))


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
    limit: int | None = None,
) -> tuple[GenerationResult, Changes]:
    """Snapshot sheet × template version into the training sheet `name` (see the module docstring).

    `template` is ``NAME`` (its latest published version) or ``NAME@VERSION`` (published).
    `prelabeler` overrides the registry entry for `ai_mode` (tests, or a caller holding a model).
    `limit` (>= 1) stops after the first `limit` items that need a pre-label: the training sheet is
    left ``partial`` and ``resume=True`` continues it (with or without a new limit).
    On cancel the finished batches are kept, the training sheet is marked ``cancelled`` and
    `Cancelled` is raised; ``resume=True`` with the same name continues where it stopped.
    """
    require(actor, "generate")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError(f"--limit must be a whole number of items, at least 1 (got {limit!r})")
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
                         {"sheet": plan.sheet.name, "template": tmpl.ref, "ai_mode": plan.ai_mode, "items": plan.total,
                          **({"limit": limit} if limit is not None else {})})
    else:
        with store.session() as s:
            s.execute(sa.update(TrainingSheet).where(TrainingSheet.id == plan.training_sheet_id)
                      .values(status="generating"))
            audit.record(s, actor, "generate.resume", plan.name, {"limit": limit} if limit is not None else {})

    scope = _scope(store, plan, limit)
    already = plan.total - scope.pending
    run = _RunProgress(progress, scope.items, f"generating with {tmpl.ref}")
    progress.start(scope.items, run.message(0))

    tags = list(plan.sheet.classification or [])
    ai_allowed, ai_prohibited, ai_reason = governance.apply_classification(tags, None, None)
    ai_uses = (json.dumps(ai_allowed), json.dumps(ai_prohibited), ai_reason)
    tags_text = json.dumps(tags)
    root = Path(plan.sheet.image_root) if plan.sheet.image_root else None
    renderer = MessageRenderer(tmpl)
    batch_size = BATCH_SIZES.get(plan.ai_mode, 512)
    written = 0
    try:
        with _bounded_store_memory(store):
            written = _write_pages(store, plan, scope, labeler, renderer, root, ai_uses, tags_text, run, batch_size)
    except _Stopped as stopped:
        written = stopped.written
        with store.session() as s:
            s.execute(sa.update(TrainingSheet).where(TrainingSheet.id == plan.training_sheet_id).values(status="cancelled"))
            audit.record(s, actor, "generate.cancelled", plan.name, {"written": already + written, "total": plan.total})
        raise Cancelled(f"generation of {plan.name!r} cancelled: {already + written} of {plan.total} pairs kept; "
                        "run it again with --resume to continue") from None
    except BaseException:
        with store.session() as s:
            s.execute(sa.update(TrainingSheet).where(TrainingSheet.id == plan.training_sheet_id).values(status="failed"))
        raise
    finished = not scope.limited
    with store.session() as s:
        values: dict[str, Any] = ({"status": "complete", "completed_at": utcnow()} if finished
                                  else {"status": STATUS_PARTIAL})
        s.execute(sa.update(TrainingSheet).where(TrainingSheet.id == plan.training_sheet_id).values(**values))
        s.expire_all()
        row = s.get(TrainingSheet, plan.training_sheet_id)
        if row is None:  # only an erasure running at the same moment could remove it
            raise NotFoundError(f"training sheet {plan.name!r} disappeared while it was generated")
        result_summary = _summary(s, row)
        audit.record(s, actor, "generate.complete" if finished else "generate.partial", plan.name,
                     {**result_summary.to_dict(), **({"limit": limit} if limit is not None else {})})
        info = _ts_info(row, plan.sheet.name)
    seconds = time.perf_counter() - started
    progress.finish(f"generated {written} pairs in {seconds:.1f} s: {result_summary.pre_approved} pre-approved"
                    + ("" if finished else f"; trial run of {limit} items to pre-label (resume to continue)"))
    return (GenerationResult(info, result_summary, written, seconds), Changes(training_sheets=True, pairs=True))


class _Stopped(Exception):
    """Cancelled inside the page loop, with the pairs written so far."""

    def __init__(self, written: int) -> None:
        super().__init__(written)
        self.written = written


def _write_pages(store: Store, plan: _Plan, scope: _Scope, labeler: Prelabeler, renderer: MessageRenderer,
                 root: Path | None, ai_uses: tuple[str, str, str], tags_text: str, run: _RunProgress,
                 batch_size: int) -> int:
    """Pre-label and write every page of pending items; the number of pairs written."""
    written = 0
    progress = run.progress
    try:
        for page in _pending_pages(store, plan, batch_size, scope.last_position):
            progress.check()
            rows = _build_rows(plan.training_sheet_id, page, labeler, renderer, root, ai_uses, tags_text,
                               _ItemProgress(run, written))
            with store.session() as s:
                insert_arrow(s, "qa_pairs", rows, casts={c: "JSON" for c in JSON_COLUMNS})
            written += rows.num_rows
            del page, rows
            progress.set(written, run.message(written))
    except Cancelled:
        raise _Stopped(written) from None
    return written


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
        "usage_reason", "data_classification", "review_reason", "created_at", "field_confidence", "evidence")}
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
            columns["field_confidence"].append(None)
            columns["evidence"].append(None)
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
            columns["field_confidence"].append(json.dumps(pre.field_confidence) if pre.field_confidence else None)
            columns["evidence"].append(json.dumps(pre.classifier.to_dict(), ensure_ascii=False)
                                       if pre.classifier is not None else None)
    n = len(batch)
    columns["training_sheet_id"] = [training_sheet_id] * n
    columns["created_at"] = [now] * n
    return pa.table({
        **{k: v for k, v in columns.items() if k not in ("confidence", "canonical_label_version", "position",
                                                           "field_confidence", "evidence")},
        "position": pa.array(columns["position"], pa.int32()),
        "confidence": pa.array(columns["confidence"], pa.float64()),
        "canonical_label_version": pa.array(columns["canonical_label_version"], pa.int32()),
        "field_confidence": pa.array(columns["field_confidence"], pa.string()),
        "evidence": pa.array(columns["evidence"], pa.string()),
    })

"""TRAIN stage: governed export of Q&A pairs, local retraining of the image classifier, lineage.

Every export and every training run asks the same question of each pair or label through
`select_for_use`, which applies the seeds' dual quality gates (`core.governance.passes_gates`):
status is ``labeled`` **and** the use is allowed **and** not prohibited. Nothing leaves the
store, and nothing is learned into model weights, by any other path.

Local retraining reads the canonical classification labels of a sheet (or the labeled pairs of
a training sheet), checks every image before any work is done, trains with the inference
package's trainer (features + scikit-learn, one ONNX file with its preprocessing), stores the
training baseline of the input statistics in the model card (MONITOR compares production
against it) and registers the model together with its lineage row in ONE transaction, so a
failure leaves no half-registered model behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core import governance
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    CanonicalLabel,
    FeedbackItem,
    ModelRow,
    ModelTrainingLineage,
    QAPair,
    Sheet,
    SheetItem,
    Template,
    TrainingSheet,
)

#: Below this many labelled images a class cannot be learnt and validated meaningfully.
DEFAULT_MIN_PER_CLASS = 5
PREVIEW_LINES = 10
#: Quantile bins of the training baseline used by MONITOR's PSI.
BASELINE_BINS = 10
#: Raw baseline values kept in the card for the KS two-sample test (bounded: the card is JSON).
BASELINE_SAMPLE = 2000
SPLIT_FILES = {"train": "train.jsonl", "val": "val.jsonl"}


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


def _sheet_row(s: Session, ref: str) -> Sheet:
    row = s.scalar(sa.select(Sheet).where(sa.or_(Sheet.name == ref, Sheet.id == ref)))
    if row is None:
        names = s.scalars(sa.select(Sheet.name).order_by(Sheet.name)).all()
        raise NotFoundError(f"no sheet named {ref!r}" + (f"; sheets here: {', '.join(names)}" if names else ""))
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


# --- governed export -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFile:
    split: str
    path: str
    lines: int
    sha256: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ExportSummary:
    """The seeds' export summary: what was labeled, what the use allows, what it refuses and why."""

    training_sheet: str
    training_sheet_id: str
    use: str
    total_pairs: int
    total_labeled: int
    use_allowed: int
    use_prohibited: int
    prohibited_reasons: dict[str, int]
    excluded_by_status: dict[str, int]
    class_counts: dict[str, dict[str, int]]
    val_fraction: float
    seed: int
    out_dir: str | None
    files: tuple[ExportFile, ...] = ()
    preview: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["files"] = [f.to_dict() for f in self.files]
        data["preview"] = list(self.preview)
        return data

    def text(self) -> str:
        lines = [
            f"Training sheet: {self.training_sheet}  (use: {self.use})",
            f"Total Labeled: {self.total_labeled}",
            f"{self.use.replace('_', ' ').title()} Allowed: {self.use_allowed}",
            f"{self.use.replace('_', ' ').title()} Prohibited: {self.use_prohibited}",
        ]
        lines += [f"  - {reason}: {n}" for reason, n in sorted(self.prohibited_reasons.items())]
        if self.excluded_by_status:
            lines.append("Not labeled: " + ", ".join(f"{k} {v}" for k, v in sorted(self.excluded_by_status.items())))
        for split, counts in self.class_counts.items():
            lines.append(f"{split}: " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
        lines += [f"wrote {f.path} ({f.lines} lines)" for f in self.files]
        return "\n".join(lines)


@dataclass(frozen=True)
class _PairRow:
    id: str
    item_ref: str
    messages: Any
    answer: Any
    status: str
    allowed: list[str]
    prohibited: list[str]
    cls: str
    tags: tuple[str, ...] = ()


def _chat_record(pair: _PairRow) -> dict:
    """Chat format: exactly the messages the model saw (system prompt, few-shot user AND
    assistant turns, the item's user turn, content parts kept as they are), then the approved
    answer as the final assistant turn."""
    messages = pair.messages
    if isinstance(messages, dict) and "messages" in messages:
        messages = messages["messages"]
    if not isinstance(messages, list):
        raise ValidationError(f"Q&A pair for item {pair.item_ref!r} has no chat messages (got {type(messages).__name__})")
    out = [{"role": str(m.get("role")), "content": m.get("content")}
           for m in messages if isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")]
    answer = pair.answer
    content = answer if isinstance(answer, str) else json.dumps(answer, sort_keys=True, ensure_ascii=False)
    out.append({"role": "assistant", "content": content})
    return {"messages": out}


def _split_key(seed: int, pair_id: str) -> str:
    # A hash of (seed, id) rather than a shuffled index: the split of a pair does not change when
    # other pairs are added, and it is the same on every machine.
    return hashlib.sha256(f"{seed}:{pair_id}".encode()).hexdigest()


def stratified_split(
    items: Sequence[tuple[str, str]], *, val_fraction: float, seed: int, val_eligible: set[str] | None = None
) -> tuple[list[str], list[str]]:
    """Deterministic stratified split of (id, class) items into train and validation ids.

    Each class gives ``round(n * val_fraction)`` of its items to validation (at least one stays
    in training); only ids in `val_eligible` (permitted for validation) may go there.
    """
    by_class: dict[str, list[str]] = defaultdict(list)
    for item_id, cls in items:
        by_class[cls].append(item_id)
    train: list[str] = []
    val: list[str] = []
    for cls in sorted(by_class):
        ids = sorted(by_class[cls], key=lambda i: _split_key(seed, i))
        n_val = min(round(len(ids) * val_fraction), max(0, len(ids) - 1)) if val_fraction > 0 else 0
        chosen: list[str] = []
        for item_id in ids:
            if len(chosen) < n_val and (val_eligible is None or item_id in val_eligible):
                chosen.append(item_id)
        chosen_set = set(chosen)
        val += chosen
        train += [i for i in ids if i not in chosen_set]
    return train, val


def _class_field(source: Any, label_type: str) -> str | None:
    from vital_desktop.services.label_types import get_label_type

    try:
        return get_label_type(source, label_type).class_field
    except ValidationError:
        return None


def _load_pairs(s: Session, ts: TrainingSheet) -> list[_PairRow]:
    class_field = _class_field(s, ts.label_type)
    rows = s.scalars(sa.select(QAPair).where(QAPair.training_sheet_id == ts.id).order_by(QAPair.position)).all()
    out = []
    for r in rows:
        answer = r.answer
        cls = ""
        if class_field and isinstance(answer, dict):
            cls = str(answer.get(class_field, ""))
        out.append(_PairRow(r.id, r.item_ref, r.messages, answer, r.status, list(r.allowed_uses or []),
                            list(r.prohibited_uses or []), cls, tuple(r.data_classification or ())))
    return out


def _writable_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError(f"cannot create the export folder {out_dir}: {exc.strerror or exc}") from exc
    if not out_dir.is_dir():
        raise ValidationError(f"export path {out_dir} is not a folder")
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ValidationError(f"cannot write to {out_dir}: permission denied")
    return out_dir


def _write_all_or_nothing(out_dir: Path, contents: dict[str, bytes]) -> list[tuple[str, Path, str]]:
    """Write every file under a temporary name first, then rename them all: no half-written export."""
    temporaries: list[tuple[str, Path]] = []
    try:
        for name, data in contents.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporaries.append((name, Path(tmp)))
        written = []
        for name, tmp in temporaries:
            os.replace(tmp, out_dir / name)
            written.append((name, out_dir / name, hashlib.sha256(contents[name]).hexdigest()))
        return written
    except OSError as exc:
        raise ValidationError(f"cannot write the export to {out_dir}: {exc.strerror or exc}") from exc
    finally:
        for _, tmp in temporaries:
            tmp.unlink(missing_ok=True)


def export_training(
    store: Store,
    *,
    actor: User,
    training_sheet: str,
    use: str = "training",
    val_fraction: float = 0.2,
    seed: int = 42,
    out_dir: Path | str | None = None,
    progress: Progress | None = None,
    preview_lines: int = PREVIEW_LINES,
) -> tuple[ExportSummary, Changes]:
    """Export the pairs of a training sheet that pass the dual gates for `use`, as chat JSONL.

    ``use="training"`` splits train/validation deterministically and stratified by class (a
    pair goes to validation only if validation is also permitted for it); other uses write one
    file named after the use. With ``out_dir=None`` nothing is written: the summary and preview
    only (the GUI's "Preview Export").
    """
    require(actor, "export_data")
    progress = progress or Progress()
    [use] = governance.check_uses([use])
    if not 0.0 <= val_fraction < 1.0:
        raise ValidationError(f"val_fraction must be at least 0 and below 1, got {val_fraction}")
    with store.read() as s:
        ts = _training_sheet_row(s, training_sheet)
        pairs = _load_pairs(s, ts)
        from vital_desktop.services.site import export_gate

        # Governance on the way out: PHI / EXPORT_CONTROLLED pairs stay home without a site policy.
        gate = export_gate(s, use=use, destination="training")
        sheet_row = s.get(Sheet, ts.sheet_id) if getattr(ts, "sheet_id", None) else None
        sheet_tags = tuple((sheet_row.classification or ()) if sheet_row is not None else ())
    progress.start(len(pairs) + 1, f"checking {len(pairs)} Q&A pairs")

    passing: list[_PairRow] = []
    prohibited_reasons: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    total_labeled = 0
    for index, pair in enumerate(pairs):
        if index % 1000 == 0:
            progress.check()
        if pair.status == "labeled":
            total_labeled += 1
        decision = decide(pair.status, pair.allowed, pair.prohibited, use)
        held = gate.refusal(set(pair.tags) | set(sheet_tags)) if decision.passes else None
        if held is not None:
            prohibited_reasons[held] += 1
        elif decision.passes:
            passing.append(pair)
        elif pair.status != "labeled":
            by_status[pair.status] += 1
        else:
            prohibited_reasons[decision.reason or "not permitted"] += 1
    progress.advance(len(pairs))

    if use == "training":
        eligible = {p.id for p in passing if decide(p.status, p.allowed, p.prohibited, "validation").passes}
        train_ids, val_ids = stratified_split([(p.id, p.cls) for p in passing], val_fraction=val_fraction, seed=seed,
                                              val_eligible=eligible)
        by_id = {p.id: p for p in passing}
        # Keep sheet order inside each split: reviewers compare the file with the sheet.
        order = {p.id: i for i, p in enumerate(passing)}
        splits = {
            "train": [by_id[i] for i in sorted(train_ids, key=order.__getitem__)],
            "val": [by_id[i] for i in sorted(val_ids, key=order.__getitem__)],
        }
        if val_fraction == 0:
            splits.pop("val")
    else:
        splits = {use: passing}
    class_counts = {split: dict(sorted(Counter(p.cls for p in rows).items())) for split, rows in splits.items()}
    encoded = {
        split: [json.dumps(_chat_record(p), ensure_ascii=False, sort_keys=True) for p in rows]
        for split, rows in splits.items()
    }
    preview = tuple(line for lines in encoded.values() for line in lines)[:preview_lines]
    summary_args = dict(
        training_sheet=ts.name, training_sheet_id=ts.id, use=use, total_pairs=len(pairs), total_labeled=total_labeled,
        use_allowed=len(passing), use_prohibited=sum(prohibited_reasons.values()),
        prohibited_reasons=dict(sorted(prohibited_reasons.items())), excluded_by_status=dict(sorted(by_status.items())),
        class_counts=class_counts, val_fraction=val_fraction if use == "training" else 0.0, seed=seed,
    )
    if out_dir is None:
        progress.finish("preview ready")
        return ExportSummary(out_dir=None, preview=preview, **summary_args), Changes()
    if not passing:
        raise ValidationError(
            f"no Q&A pair of training sheet {ts.name!r} passes the gates for {use}: "
            f"{total_labeled} labeled, {sum(prohibited_reasons.values())} with {use} prohibited or not allowed; "
            "approve pairs in review or check their usage constraints",
            details=summary_args,
        )
    target = _writable_dir(Path(out_dir))
    progress.check()
    names = {split: SPLIT_FILES.get(split, f"{split}.jsonl") for split in encoded}
    contents = {names[split]: ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8") for split, lines in encoded.items()}
    files = tuple(
        ExportFile(split, str(path), len(encoded[split]), digest)
        for (split, (_, path, digest)) in zip(encoded, _write_all_or_nothing(target, contents), strict=False)
    )
    summary = ExportSummary(out_dir=str(target), files=files, preview=preview, **summary_args)
    manifest = {k: v for k, v in summary.to_dict().items() if k != "preview"} | {
        "exported_by": actor.username, "exported_at": iso(utcnow()), "template": f"{ts.template_name} {ts.template_version}",
    }
    _write_all_or_nothing(target, {"export_summary.json": json.dumps(manifest, indent=2, sort_keys=True).encode()})
    with store.session() as s:
        audit.record(s, actor, "training.export", ts.name, {
            "use": use, "out_dir": str(target), "allowed": len(passing), "prohibited": summary.use_prohibited,
            "files": {f.split: f.sha256 for f in files},
        })
    progress.finish(f"exported {len(passing)} pairs")
    return summary, Changes()


# --- local retraining ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingExample:
    item_ref: str
    image_path: str
    cls: str
    label_id: str | None
    label_version: int | None
    pair_id: str | None = None


@dataclass(frozen=True)
class TrainingSet:
    """What a training run will learn from, after the gates; and what it left out and why."""

    source: str  # "sheet" or "training_sheet"
    sheet_id: str
    sheet_name: str
    training_sheet_id: str | None
    template_id: str | None
    template_version: str | None
    label_type: str
    examples: tuple[TrainingExample, ...]
    excluded: dict[str, int]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e.cls for e in self.examples).items()))


def collect_training_set(
    store: Store, *, sheet: str | None = None, training_sheet: str | None = None, label_type: str = "classification"
) -> TrainingSet:
    """The labelled images that pass the gates for ``training``, from a sheet's canonical labels
    or from a training sheet's labeled pairs."""
    if (sheet is None) == (training_sheet is None):
        raise ValidationError("train from either a sheet (canonical labels) or a training sheet, not both or neither")
    excluded: Counter[str] = Counter()
    examples: list[TrainingExample] = []
    with store.read() as s:
        if training_sheet is not None:
            ts = _training_sheet_row(s, training_sheet)
            sheet_row = _sheet_row(s, ts.sheet_id)
            label_type = ts.label_type
            class_field = _class_field(s, label_type)
            if not class_field:
                raise ValidationError(f"training sheet {ts.name!r} has label type {label_type}, which has no class to learn")
            items = {r.item_ref: r for r in s.scalars(sa.select(SheetItem).where(SheetItem.sheet_id == sheet_row.id))}
            for pair in s.scalars(sa.select(QAPair).where(QAPair.training_sheet_id == ts.id).order_by(QAPair.position)):
                decision = decide(pair.status, pair.allowed_uses, pair.prohibited_uses, "training")
                if not decision.passes:
                    excluded[decision.reason or "not permitted"] += 1
                    continue
                cls = pair.answer.get(class_field) if isinstance(pair.answer, dict) else None
                if not cls:
                    excluded[f"answer has no {class_field}"] += 1
                    continue
                examples.append(_example(sheet_row, items.get(pair.item_ref), pair.item_ref, str(cls),
                                         pair.canonical_label_id, pair.canonical_label_version, pair.id))
            template_id, template_version, ts_id = ts.template_id, ts.template_version, ts.id
        else:
            sheet_row = _sheet_row(s, sheet)  # type: ignore[arg-type]
            class_field = _class_field(s, label_type)
            if not class_field:
                raise ValidationError(f"label type {label_type!r} has no class field to learn")
            items = {r.item_ref: r for r in s.scalars(sa.select(SheetItem).where(SheetItem.sheet_id == sheet_row.id))}
            labels = s.scalars(sa.select(CanonicalLabel).where(
                CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == label_type
            ).order_by(CanonicalLabel.item_ref))
            for label in labels:
                decision = decide(label_status(label.review_state), label.allowed_uses, label.prohibited_uses, "training")
                if not decision.passes:
                    excluded[decision.reason or "not permitted"] += 1
                    continue
                cls = (label.label_data or {}).get(class_field)
                examples.append(_example(sheet_row, items.get(label.item_ref), label.item_ref, str(cls),
                                         label.id, label.version))
            template_id = template_version = ts_id = None
    missing = [e.item_ref for e in examples if not e.image_path]
    if missing:
        raise ValidationError(
            f"{len(missing)} labelled item(s) have no image file to train on: {', '.join(missing[:10])}"
            + (" …" if len(missing) > 10 else ""),
            details={"items": missing},
        )
    return TrainingSet(
        source="training_sheet" if training_sheet is not None else "sheet", sheet_id=sheet_row.id,
        sheet_name=sheet_row.name, training_sheet_id=ts_id, template_id=template_id, template_version=template_version,
        label_type=label_type, examples=tuple(examples), excluded=dict(sorted(excluded.items())),
    )


def _example(sheet: Sheet, item: SheetItem | None, item_ref: str, cls: str, label_id: str | None,
             label_version: int | None, pair_id: str | None = None) -> TrainingExample:
    path = ""
    if item is not None and item.image_path and sheet.image_root and not item.missing:
        path = str(Path(sheet.image_root) / item.image_path)
    return TrainingExample(item_ref, path, cls, label_id, label_version, pair_id)


def _label_type_version(store: Store, label_type: str) -> str:
    from vital_desktop.services.label_types import get_label_type

    return get_label_type(store, label_type).version


def _check_classes(store: Store, training_set: TrainingSet, classes: Sequence[str] | None,
                   min_per_class: int) -> list[str]:
    from vital_desktop.services.label_types import get_label_type

    taxonomy = get_label_type(store, training_set.label_type).classes()
    wanted = list(classes) if classes else taxonomy
    unknown = [c for c in wanted if taxonomy and c not in taxonomy]
    if unknown:
        raise ValidationError(f"unknown class(es) {', '.join(unknown)}; "
                              f"the {training_set.label_type} classes are {', '.join(taxonomy)}")
    if len(wanted) < 2:
        raise ValidationError("a classifier needs at least 2 classes")
    counts = Counter(e.cls for e in training_set.examples if e.cls in wanted)
    empty = [c for c in wanted if counts[c] == 0]
    if empty:
        raise ValidationError(
            f"class(es) {', '.join(empty)} have no training examples in {training_set.sheet_name!r}; label some, "
            f"or train on fewer classes (classes=...)",
            details={"counts": {c: counts[c] for c in wanted}},
        )
    few = {c: counts[c] for c in wanted if counts[c] < min_per_class}
    if few:
        raise ValidationError(
            "too few labelled images per class to train (need at least "
            f"{min_per_class}): " + ", ".join(f"{c} has {n}" for c, n in few.items()),
            details={"counts": {c: counts[c] for c in wanted}, "min_per_class": min_per_class},
        )
    return wanted


def _quantile_edges(values: np.ndarray, bins: int = BASELINE_BINS) -> list[float]:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(e) for e in edges]


def _bin_fractions(values: np.ndarray, edges: list[float]) -> list[float]:
    # Bins are (-inf, e0], (e0, e1], ..., (e_last, inf): the same rule MONITOR's SQL applies.
    index = np.searchsorted(np.asarray(edges), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return [float(c) / max(1, len(values)) for c in counts]


def baseline_statistics(stats: Sequence[Any], labels: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """The training baseline MONITOR compares production with: binned input statistics, a bounded
    raw sample for the KS test, image resolutions, and the class mix."""
    out: dict[str, Any] = {"count": len(stats), "bins": BASELINE_BINS, "continuous": {}}
    rng = np.random.default_rng(seed)
    for name, values in (
        ("image_mean", np.array([st.mean for st in stats], dtype=float)),
        ("image_std", np.array([st.std for st in stats], dtype=float)),
    ):
        edges = _quantile_edges(values)
        sample = values if len(values) <= BASELINE_SAMPLE else rng.choice(values, BASELINE_SAMPLE, replace=False)
        out["continuous"][name] = {
            "edges": edges, "fractions": _bin_fractions(values, edges),
            "mean": float(values.mean()), "std": float(values.std()),
            "sample": [round(float(v), 4) for v in sample],
        }
    resolutions = Counter(f"{st.width}x{st.height}" for st in stats)
    out["resolution"] = {k: v / max(1, len(stats)) for k, v in sorted(resolutions.items())}
    classes = Counter(labels)
    out["class_mix"] = {k: v / max(1, len(labels)) for k, v in sorted(classes.items())}
    return out


@dataclass(frozen=True)
class TrainResult:
    model_id: str
    name: str
    version: int
    path: str
    classes: list[str]
    images: int
    class_counts: dict[str, int]
    excluded: dict[str, int]
    held_out_accuracy: float
    metrics: dict[str, Any]
    duration_s: float
    feedback_added: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def train_classifier(
    store: Store,
    *,
    actor: User,
    name: str,
    sheet: str | None = None,
    training_sheet: str | None = None,
    label_type: str = "classification",
    classes: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 42,
    min_per_class: int = DEFAULT_MIN_PER_CLASS,
    progress: Progress | None = None,
    folds: int | None = None,
    backbone: str | None = None,
) -> tuple[TrainResult, Changes]:
    """Train an image classifier on the gated labels, register it as the next version of `name`
    with its card, baseline and lineage. Nothing is registered unless every step succeeded."""
    import time

    from vital_desktop.inference.train_classifier import train_image_classifier

    require(actor, "train")
    progress = progress or Progress()
    name = (name or "").strip()
    if not name:
        raise ValidationError("a model needs a name")
    from vital_desktop.services import registry

    if not registry._NAME_RE.match(name):  # checked before training, not after minutes of work
        raise ValidationError(f"model name {name!r} must be 1-64 lower-case letters, digits, '.', '-' or '_'")
    started = time.perf_counter()
    training_set = collect_training_set(store, sheet=sheet, training_sheet=training_sheet, label_type=label_type)
    wanted = _check_classes(store, training_set, classes, min_per_class)
    examples = [e for e in training_set.examples if e.cls in wanted]
    left_out = Counter(e.cls for e in training_set.examples if e.cls not in wanted)
    excluded = dict(training_set.excluded) | {f"class {c} not trained": n for c, n in left_out.items()}

    try:
        if backbone:  # a registered pretrained backbone: cached embeddings + a local head
            from vital_desktop.services import backbones

            backbone_model = registry.get_model(store, backbone, kind=registry.KIND_BACKBONE)
            trained = backbones.train_on_backbone(
                store, Path(backbone_model.path), [e.image_path for e in examples], [e.cls for e in examples],
                wanted, val_fraction=val_fraction, seed=seed, folds=folds, name=name, progress=progress,
                backbone_ref=backbone_model.ref)
        else:
            trained = train_image_classifier(
                [e.image_path for e in examples], [e.cls for e in examples], wanted,
                val_fraction=val_fraction, seed=seed, progress=progress, name=name, folds=folds,
            )
    except ValidationError as exc:
        index = (exc.details or {}).get("index")
        if not isinstance(index, int):
            raise
        example = examples[index]  # an unreadable image: name the item, nothing was registered
        raise ValidationError(f"item {example.item_ref!r}: {exc.message}; fix or relabel it, then train again",
                              details={"item_ref": example.item_ref, "path": example.image_path}) from exc
    stats = trained.stats
    progress.check()
    config = {
        "trainer": "vital_desktop.inference.train_classifier",
        "estimator": trained.card.get("estimator"),
        "val_fraction": val_fraction,
        "seed": seed,
        "min_per_class": min_per_class,
        "folds": trained.card.get("model_selection", {}).get("folds"),
        "backbone": backbone,
        "representation": trained.card.get("features", {}).get("blocks"),
        "temperature": trained.card.get("calibration", {}).get("temperature"),
        "classes": wanted,
        "label_type": training_set.label_type,
        "label_type_version": _label_type_version(store, training_set.label_type),
        "source": training_set.source,
    }
    card = dict(trained.card)
    # The model card names the label-type version and class list it learnt (a later taxonomy
    # change makes the model say it was trained on an older version).
    card["label_type"], card["label_type_version"] = training_set.label_type, config["label_type_version"]
    card["label_type_classes"] = list(wanted)
    card["baseline"] = baseline_statistics(stats, [e.cls for e in examples], seed=seed)
    card["lineage"] = {
        "sheet": training_set.sheet_name, "training_sheet_id": training_set.training_sheet_id,
        "template_version": training_set.template_version, "labels": len(examples), "excluded": excluded,
    }
    lineage_labels = [
        {"id": e.label_id, "version": e.label_version, "item_ref": e.item_ref, "class": e.cls} for e in examples
    ]
    registered = _register(store, actor, trained, name=name, card=card, training_set=training_set, config=config,
                           lineage_labels=lineage_labels, pair_ids=[e.pair_id for e in examples if e.pair_id])
    metrics = held_out_metrics(card)
    result = TrainResult(
        model_id=registered["model_id"], name=name, version=registered["version"], path=registered["path"],
        classes=wanted, images=len(examples), class_counts=dict(sorted(Counter(e.cls for e in examples).items())),
        excluded=excluded, held_out_accuracy=float(metrics.get("accuracy", 0.0)), metrics=metrics,
        duration_s=round(time.perf_counter() - started, 2), feedback_added=registered["feedback_added"],
    )
    progress.finish(f"trained {name} v{result.version}")
    return result, Changes(models=True, feedback=registered["feedback_added"] > 0)


def _register(store: Store, actor: User, trained: Any, *, name: str, card: dict, training_set: TrainingSet,
              config: dict, lineage_labels: list[dict], pair_ids: list[str]) -> dict:
    """Register the model through the registry service, then write its lineage.

    The registry commits the model in its own transaction; if writing the lineage fails after
    that, the registration is undone (row and file removed, the undo audited), so no model is
    ever left registered without the record of what it learnt from.
    """
    from vital_desktop.services import registry
    from vital_desktop.services.accounts import require as _require

    _require(actor, "register_model")
    staging = store.staging_dir / f"{name}-{os.getpid()}-{utcnow().strftime('%Y%m%d%H%M%S%f')}.onnx"
    try:
        trained.save(staging)
        model, _ = registry.register_model(store, actor=actor, path=staging, kind=registry.KIND_ONNX, name=name, card=card)
    finally:
        staging.unlink(missing_ok=True)
    label_ids = [entry["id"] for entry in lineage_labels if entry["id"]]
    try:
        with store.session() as s:
            s.add(ModelTrainingLineage(
                model_id=model.id, training_sheet_id=training_set.training_sheet_id, sheet_id=training_set.sheet_id,
                template_id=training_set.template_id, template_version=training_set.template_version,
                qa_pair_ids=pair_ids, canonical_labels=lineage_labels, training_config=config,
                trained_by=actor.username,
            ))
            # Accepted feedback whose corrected label this model learnt from has now reached training.
            accepted = s.scalars(sa.select(FeedbackItem).where(
                FeedbackItem.status == "accepted", FeedbackItem.canonical_label_id.in_(label_ids or [""])
            )).all()
            for item in accepted:
                item.status = "added_to_training"
            audit.record(s, actor, "model.train", model.ref, {
                "model_id": model.id, "labels": len(lineage_labels), "pairs": len(pair_ids), "config": config,
                "held_out_accuracy": held_out_metrics(card).get("accuracy"),
                "feedback_added": len(accepted),
            })
            s.flush()
            feedback_added = len(accepted)
    except BaseException:
        with store.session() as s:
            s.execute(sa.delete(ModelRow).where(ModelRow.id == model.id))
            audit.record(s, actor, "model.register_undone", model.ref, {"reason": "lineage could not be written"})
        Path(model.path).unlink(missing_ok=True)
        raise
    return {"model_id": model.id, "version": model.version, "path": model.path, "feedback_added": feedback_added}


# --- lineage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageSource:
    training_sheet_id: str | None
    training_sheet: str | None
    sheet_id: str | None
    sheet: str | None
    template_id: str | None
    template: str | None
    template_version: str | None
    qa_pair_ids: list[str]
    canonical_labels: list[dict]
    training_config: dict
    trained_by: str
    trained_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Lineage:
    model_id: str
    name: str
    version: int
    created_at: str | None
    held_out_accuracy: float | None
    sources: tuple[LineageSource, ...]

    def label_versions(self) -> dict[str, int]:
        """canonical label id → version this model learnt from."""
        return {entry["id"]: entry["version"] for src in self.sources for entry in src.canonical_labels if entry.get("id")}

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["sources"] = [src.to_dict() for src in self.sources]
        data["label_count"] = len(self.label_versions())
        return data


def lineage(store: Store, *, model: str) -> Lineage:
    """Model → training sheet(s) → Q&A pairs → canonical label ids and versions → template → config."""
    with store.read() as s:
        row = resolve_model(s, model)
        sources = []
        for entry in s.scalars(sa.select(ModelTrainingLineage).where(ModelTrainingLineage.model_id == row.id)
                               .order_by(ModelTrainingLineage.trained_at)):
            ts = s.get(TrainingSheet, entry.training_sheet_id) if entry.training_sheet_id else None
            sheet = s.get(Sheet, entry.sheet_id) if entry.sheet_id else None
            template = s.get(Template, entry.template_id) if entry.template_id else None
            sources.append(LineageSource(
                training_sheet_id=entry.training_sheet_id, training_sheet=ts.name if ts else None,
                sheet_id=entry.sheet_id, sheet=sheet.name if sheet else None, template_id=entry.template_id,
                template=template.name if template else None, template_version=entry.template_version,
                qa_pair_ids=list(entry.qa_pair_ids or []), canonical_labels=list(entry.canonical_labels or []),
                training_config=dict(entry.training_config or {}), trained_by=entry.trained_by,
                trained_at=iso(entry.trained_at),
            ))
        accuracy = held_out_metrics(row.card or {}).get("accuracy")
        return Lineage(row.id, row.name, row.version, iso(row.created_at), accuracy, tuple(sources))


@dataclass(frozen=True)
class LabelUse:
    model_id: str
    name: str
    version: int
    label_id: str
    item_ref: str | None
    label_version_used: int | None
    current_label_version: int | None

    @property
    def stale(self) -> bool:
        """The label changed after this model learnt from it."""
        return self.current_label_version is not None and self.label_version_used != self.current_label_version

    def to_dict(self) -> dict:
        return dict(self.__dict__) | {"stale": self.stale}


def models_using_label(
    store: Store, *, label_id: str | None = None, sheet: str | None = None, item_ref: str | None = None,
    label_type: str = "classification",
) -> list[LabelUse]:
    """Reverse lineage: which models learnt from a canonical label (by id, or by sheet/item/label type)."""
    with store.read() as s:
        if label_id is None:
            if not (sheet and item_ref):
                raise ValidationError("name a label by its id, or by sheet and item (and label type)")
            sheet_row = _sheet_row(s, sheet)
            label = s.scalar(sa.select(CanonicalLabel).where(
                CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.item_ref == item_ref,
                CanonicalLabel.label_type == label_type))
            if label is None:
                raise NotFoundError(f"no {label_type} label for item {item_ref!r} in sheet {sheet!r}")
            label_id = label.id
        current = s.get(CanonicalLabel, label_id)
        # Filter in SQL on the JSON text first (cheap), then confirm on the parsed entries.
        rows = s.execute(
            sa.select(ModelTrainingLineage.model_id, ModelTrainingLineage.canonical_labels)
            .where(sa.cast(ModelTrainingLineage.canonical_labels, sa.String).contains(label_id))
        ).all()
        uses = []
        for model_id, entries in rows:
            for entry in entries or []:
                if entry.get("id") == label_id:
                    model = s.get(ModelRow, model_id)
                    if model is None:
                        continue
                    uses.append(LabelUse(model.id, model.name, model.version, label_id, entry.get("item_ref"),
                                         entry.get("version"), current.version if current else None))
        return sorted(uses, key=lambda u: (u.name, u.version))


# --- comparing versions on the same held-out items -------------------------------------------


@dataclass(frozen=True)
class ModelEvaluation:
    model_id: str
    name: str
    version: int
    items: int
    correct: int
    accuracy: float
    per_class_recall: dict[str, float]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def held_out_items(store: Store, *, models: Sequence[str], sheet: str, label_type: str = "classification") -> list[str]:
    """Items with a label permitted for evaluation that none of `models` learnt from."""
    used: set[str] = set()
    for model in models:
        for src in lineage(store, model=model).sources:
            used.update(entry["item_ref"] for entry in src.canonical_labels if entry.get("item_ref"))
    with store.read() as s:
        sheet_row = _sheet_row(s, sheet)
        rows = s.scalars(sa.select(CanonicalLabel).where(
            CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == label_type))
        return sorted(
            r.item_ref for r in rows
            if r.item_ref not in used and decide(label_status(r.review_state), r.allowed_uses, r.prohibited_uses,
                                                 "evaluation").passes
        )


def evaluate_models(
    store: Store, *, models: Sequence[str], sheet: str, item_refs: Sequence[str] | None = None,
    label_type: str = "classification", progress: Progress | None = None,
) -> list[ModelEvaluation]:
    """Accuracy of each model on the same labelled items (default: `held_out_items`), so two
    versions are compared on equal terms. Nothing is logged: this is not production use."""
    from vital_desktop.inference.classifier import OnnxClassifier

    refs = list(item_refs) if item_refs is not None else held_out_items(store, models=models, sheet=sheet,
                                                                           label_type=label_type)
    if not refs:
        raise ValidationError("no held-out labelled items to evaluate on")
    class_field = _class_field(store, label_type)
    with store.read() as s:
        sheet_row = _sheet_row(s, sheet)
        items = {r.item_ref: r for r in s.scalars(sa.select(SheetItem).where(
            SheetItem.sheet_id == sheet_row.id, SheetItem.item_ref.in_(refs)))}
        truth = {r.item_ref: str((r.label_data or {}).get(class_field)) for r in s.scalars(sa.select(CanonicalLabel).where(
            CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == label_type,
            CanonicalLabel.item_ref.in_(refs)))}
        model_rows = [resolve_model(s, m) for m in models]
    refs = [r for r in refs if r in truth and r in items and items[r].image_path]
    paths = [str(Path(sheet_row.image_root or "") / items[r].image_path) for r in refs]
    out = []
    for row in model_rows:
        classifier = OnnxClassifier(Path(row.path))
        results = classifier.predict_paths(paths, progress=progress)
        correct = Counter()
        total = Counter()
        for ref, res in zip(refs, results, strict=False):
            total[truth[ref]] += 1
            if res.predicted_class == truth[ref]:
                correct[truth[ref]] += 1
        n_correct = sum(correct.values())
        out.append(ModelEvaluation(row.id, row.name, row.version, len(refs), n_correct,
                                   round(n_correct / len(refs), 4) if refs else 0.0,
                                   {c: round(correct[c] / total[c], 4) for c in sorted(total)}))
    return out


__all__ = [
    "ExportSummary",
    "GateDecision",
    "LabelUse",
    "Lineage",
    "ModelEvaluation",
    "TrainResult",
    "TrainingSet",
    "collect_training_set",
    "decide",
    "evaluate_models",
    "export_training",
    "held_out_items",
    "lineage",
    "models_using_label",
    "resolve_model",
    "stratified_split",
    "train_classifier",
]

"""Governed export of a training sheet's Q&A pairs (chat JSON lines, stratified train/val split).

Only pairs that pass `training_gate.decide` for the export's use leave the store, and
`core.governance` is asked for the way out; the files are written all or nothing.
"""


from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core import governance
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    QAPair,
    Sheet,
    TrainingSheet,
)

from vital_desktop.services.training_gate import _class_field, _training_sheet_row, decide

PREVIEW_LINES = 10
SPLIT_FILES = {"train": "train.jsonl", "val": "val.jsonl"}


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
        for name, staged in temporaries:
            os.replace(staged, out_dir / name)
            written.append((name, out_dir / name, hashlib.sha256(contents[name]).hexdigest()))
        return written
    except OSError as exc:
        raise ValidationError(f"cannot write the export to {out_dir}: {exc.strerror or exc}") from exc
    finally:
        for _, staged in temporaries:
            staged.unlink(missing_ok=True)


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
    summary_args: dict[str, Any] = dict(
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

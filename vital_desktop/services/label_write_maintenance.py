"""Writes of the one label write path that maintain stored labels rather than apply records.

Part of the write path (`services/label_write.py` is the rest; a test lets only these two
modules write `canonical_labels`, `canonical_label_history` and `label_conflicts`):

- `relabel_in_bulk`: a taxonomy rename or merge as a new version of each affected label, with
  every rule of `label_decisions.decide` (rows that are not a plain update go through
  `prepare_records` + `upsert_records`);
- `flag_for_review` / `flag_changed_items`: review states set by the taxonomy and sheet services;
- `erase_labels`: every trace of some items' labels, for erasure requests.

Each runs inside the caller's transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from vital_desktop.core.ids import utcnow
from vital_desktop.core.strict_json import canonical_json
from vital_desktop.core.users import User
from vital_desktop.services.label_records import LabelRecord, prepare_records
from vital_desktop.services.label_write import (
    UpsertOutcome,
    _by_ids,
    _claim_counts,
    _json_list,
    _refuse_claimed,
    _views,
    upsert_records,
)
from vital_desktop.store.bulk import raw_connection


# --- relabelling in bulk (taxonomy rename / merge) -----------------------------------------------


def relabel_in_bulk(
    session: Session, actor: User, label_type: str, rows: list[tuple], relabel: Any, *, reason: str,
    action: str = "taxonomy",
) -> UpsertOutcome:
    """A new version of each stored label in `rows` with its data mapped by `relabel` (a taxonomy
    rename or merge), inside the caller's transaction, keeping every rule of `decide`.

    `rows`: (label id, sheet id, item ref, version seen, label data, allowed JSON, prohibited
    JSON, usage reason, confidence, notes), as the taxonomy service read them; equal data may
    be the same object (each distinct one is mapped, canonicalised and validated once, against
    the label type's latest published version). A row still at the version seen, whose
    constraints are a fixed point of its sheet's classification — what `decide` calls a plain
    update for such a record — is written in SQL: the label, its history row and the release of
    the actor's own claims, for all such rows at once. Every other row (changed meanwhile, or
    its sheet's classification changed since) goes through `prepare_records` + `upsert_records`
    one by one, so it becomes the conflict or update the write path decides. Another user's
    live claim on any key refuses the whole change (`ConflictError`), as everywhere."""
    from vital_desktop.core import governance
    from vital_desktop.services.label_types import check_label_data, get_label_type

    if not rows:
        return UpsertOutcome()
    lt = get_label_type(session, label_type)
    mapped: dict[int, str] = {}
    for row in rows:
        if id(row[4]) not in mapped:
            data = relabel(row[4])
            check_label_data(lt, data)
            mapped[id(row[4])] = canonical_json(data, what="label_data")
    session.flush()
    raw = raw_connection(session)
    now = utcnow()
    sheet_tags = {sid: json.loads(tags) if tags else [] for sid, tags in raw.execute(
        "SELECT id, classification::VARCHAR FROM sheets").fetchall()}
    fixed: dict[tuple, bool] = {}  # (sheet, allowed, prohibited, reason) → constraints unchanged by the tags

    def is_fixed(row: tuple) -> bool:
        key = (row[1], row[5], row[6], row[7])
        if key not in fixed:
            allowed, prohibited = json.loads(row[5]), json.loads(row[6])
            tags = sheet_tags.get(row[1], [])
            out = governance.apply_classification(tags, allowed, prohibited, row[7])
            fixed[key] = sorted(out[0]) == sorted(allowed) and sorted(out[1]) == sorted(prohibited) and out[2] == row[7]
        return fixed[key]

    view = f"_relabel_{next(_views)}"
    table = pa.table({
        "label_id": [r[0] for r in rows], "sheet_id": [r[1] for r in rows], "item_ref": [r[2] for r in rows],
        "label_type": [label_type] * len(rows), "expected_version": pa.array([r[3] for r in rows], pa.int64()),
        "label_data": [mapped[id(r[4])] for r in rows], "fixed_point": [is_fixed(r) for r in rows],
        "tags": [_json_list(sheet_tags.get(r[1], [])) for r in rows]})
    raw.register(view, table)
    try:
        others, mine = _claim_counts(raw, actor, now)
        if others:
            _refuse_claimed(raw, actor, view, now, by_row=False)
        raw.execute(
            f"CREATE TEMP TABLE {view}_go AS SELECT n.label_id, n.label_data, uuid()::VARCHAR AS history_id "
            f"FROM {view} n JOIN canonical_labels c ON c.id = n.label_id WHERE c.version = n.expected_version "
            "AND n.fixed_point AND list_sort(c.data_classification::VARCHAR[]) = list_sort(n.tags::JSON::VARCHAR[]) "
            "AND c.label_data::VARCHAR <> n.label_data::JSON::VARCHAR")
        try:
            params = {"by": actor.username, "now": now, "v": lt.version}
            raw.execute(
                "UPDATE canonical_labels SET label_data = g.label_data::JSON, version = canonical_labels.version + 1, "
                "origin = 'site', review_state = 'ok', updated_by = $by, updated_at = $now, label_type_version = $v "
                f"FROM {view}_go g WHERE canonical_labels.id = g.label_id", params)
            params.update(action=action, reason=reason)
            raw.execute(
                "INSERT INTO canonical_label_history (id, label_id, sheet_id, item_ref, label_type, version, label_data, "
                "allowed_uses, prohibited_uses, usage_reason, data_classification, confidence, notes, origin, action, "
                "reason, changed_by, changed_at, label_type_version) SELECT g.history_id, c.id, c.sheet_id, c.item_ref, "
                "c.label_type, c.version, c.label_data, c.allowed_uses, c.prohibited_uses, c.usage_reason, "
                "c.data_classification, c.confidence, c.notes, 'site', $action, $reason, $by, $now, $v "
                f"FROM {view}_go g JOIN canonical_labels c ON c.id = g.label_id", params)
            if mine:
                raw.execute(f"DELETE FROM label_claims WHERE claimed_by = ? AND (sheet_id, item_ref, label_type) IN "
                            f"(SELECT n.sheet_id, n.item_ref, n.label_type FROM {view} n JOIN {view}_go g "
                            "ON g.label_id = n.label_id)", [actor.username])
            done = {r[0] for r in raw.execute(f"SELECT label_id FROM {view}_go").fetchall()}
        finally:
            raw.execute(f"DROP TABLE {view}_go")
    finally:
        raw.unregister(view)
    session.expire_all()
    rest = [r for r in rows if r[0] not in done]
    if not rest:
        return UpsertOutcome(updated=len(done))
    records = [LabelRecord(sheet_id=r[1], item_ref=r[2], label_type=label_type, label_data=json.loads(mapped[id(r[4])]),
                           allowed_uses=json.loads(r[5]), prohibited_uses=json.loads(r[6]), usage_reason=r[7],
                           confidence=r[8], notes=r[9], expected_version=r[3], reason=reason) for r in rest]
    outcome = upsert_records(session, actor, prepare_records(session, records), action=action)
    return UpsertOutcome(created=outcome.created, updated=outcome.updated + len(done), unchanged=outcome.unchanged,
                         conflicts=outcome.conflicts, conflict_ids=outcome.conflict_ids)


# --- item content changed / erased (called by the sheet services) -----------------------------


def flag_for_review(session: Session, label_ids: list[str]) -> int:
    """Mark labels for an expert's review (review_state ``review``: kept and shown, not trained
    on until the next saved version clears it), e.g. after a taxonomy split or deprecation. The
    caller writes the audit row in the same transaction. Returns how many were flagged."""
    if not label_ids:
        return 0
    session.flush()
    _by_ids(raw_connection(session), list(label_ids),
            "UPDATE canonical_labels SET review_state = 'review' WHERE id IN (SELECT id FROM {view}) "
            "AND review_state = 'ok'")
    session.expire_all()
    return len(label_ids)


def flag_changed_items(session: Session, *, sheet_id: str, item_refs: list[str]) -> int:
    """Mark the current labels of items whose image content changed as ``content_changed``.

    A canonical label is about an image's content, so it is not silently reused for new
    content: the flag keeps it out of training (only ``ok`` labels pass) until an expert saves
    a new version. Returns how many labels were flagged. Runs in the caller's transaction.
    """
    if not item_refs:
        return 0
    raw = raw_connection(session)
    session.flush()
    raw.register("_changed_refs", pa.table({"item_ref": list(dict.fromkeys(item_refs))}))
    try:
        row = raw.execute("UPDATE canonical_labels SET review_state = 'content_changed' WHERE sheet_id = ? "
                          "AND item_ref IN (SELECT item_ref FROM _changed_refs)", [sheet_id]).fetchone()
    finally:
        raw.unregister("_changed_refs")
    session.expire_all()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class ErasedLabels:
    labels: int
    versions: int
    conflicts: int
    label_ids: tuple[str, ...]


def erase_labels(session: Session, *, sheet_id: str, item_refs: list[str] | None = None) -> ErasedLabels:
    """Remove every trace of the labels of these items (every item of the sheet when None): the
    labels, every history version's content, their conflicts and claims. For erasure requests
    only; the caller records the erasure (who, when, how many, why — never content) in the
    audit log. Runs in the caller's transaction."""
    raw = raw_connection(session)
    session.flush()
    where, params = "sheet_id = ?", [sheet_id]
    if item_refs is not None:
        raw.register("_erase_refs", pa.table({"item_ref": list(dict.fromkeys(item_refs))}))
        where += " AND item_ref IN (SELECT item_ref FROM _erase_refs)"
    try:
        label_ids = tuple(r[0] for r in raw.execute(f"SELECT id FROM canonical_labels WHERE {where}", params).fetchall())
        counts = {}
        for table in ("canonical_label_history", "label_conflicts", "label_claims", "canonical_labels"):
            row = raw.execute(f"DELETE FROM {table} WHERE {where}", params).fetchone()
            counts[table] = int(row[0]) if row else 0
    finally:
        if item_refs is not None:
            raw.unregister("_erase_refs")
    session.expire_all()
    return ErasedLabels(labels=counts["canonical_labels"], versions=counts["canonical_label_history"],
                        conflicts=counts["label_conflicts"], label_ids=label_ids)

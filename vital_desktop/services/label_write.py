"""The one write path for canonical labels: `prepare_records` then `upsert_records`.

Every change of a canonical label — labeling tool save, Mode A approve/edit (single and bulk),
rollback, withdraw, file import, hub bundle, feedback, conflict resolution — is a `LabelRecord`
applied by `upsert_records` inside the caller's transaction. No other module writes
`canonical_labels`, `canonical_label_history` or `label_conflicts` (a test guards it) but
`label_write_maintenance`, the same path's taxonomy relabel, review flags and erasure. The rules,
all decided in `decide`:

- **claims**: a key someone else holds a live claim on refuses the whole write
  (`ConflictError` naming the items); a site write releases the actor's own claims on its keys;
- **expected version**: a record that says which version its author saw (``expected_version``;
  ``0`` means "saw no label") and is based on an older one than the current becomes a conflict,
  even from the same user (Mode A approving an AI pair generated before an expert labelled);
- **origin**: different data from the hub, or from another user who did not see the current
  version, becomes a conflict; the current label is kept and marked for review;
- **usage constraints**: any relaxing — a use newly allowed, a prohibited use dropped, a data
  classification tag removed — by anyone but an admin or the label's owner, or by the hub, is
  a conflict even when the label data is unchanged. A record that gives no constraints at all
  keeps the current label's (plus the sheet's classification);
- a new key gets version 1, the same content again is a no-op, anything else is the next
  version; every version (and a withdrawal) is a history row, so versions stay contiguous.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_ids, utcnow
from vital_desktop.core.strict_json import canonical_json
from vital_desktop.core.users import User
from vital_desktop.services.label_decisions import (  # noqa: F401 - re-exported
    Current,
    Decision,
    decide,
    effective_uses,
    may_relax,
    relaxations,
)
from vital_desktop.services.label_records import (  # noqa: F401 - re-exported
    CONFIDENCE_LEVELS,
    MAX_ERRORS_REPORTED,
    LabelRecord,
    RowErrors,
    prepare_records,
)
from vital_desktop.store.bulk import insert_arrow, raw_connection
from vital_desktop.store.models import CanonicalLabel, LabelConflict

ORIGINS = ("site", "hub")
#: Why a record became a conflict (label_conflicts.kind).
CONFLICT_KINDS = ("stale", "other_user", "hub", "relaxation")
SMALL_BATCH = 32  # up to this many records, keyed queries beat registering Arrow tables


@dataclass(frozen=True)
class UpsertOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    withdrawn: int = 0
    label_ids: tuple[str, ...] = ()
    conflict_ids: tuple[str, ...] = ()
    #: for batches of up to `SMALL_BATCH` rows: each row's label as the write left it (the
    #: `canonical_labels` columns; JSON columns as text), None for a withdrawal. A save returns
    #: it without reading the label back.
    written: tuple[dict | None, ...] = ()

    def to_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "conflicts": self.conflicts, "withdrawn": self.withdrawn}


# --- applying a batch -------------------------------------------------------------------------------

#: The batch `apply_table` takes: one row per label change, constraints already resolved by the
#: preparation (JSON text), label_data as canonical JSON text.
INCOMING = pa.schema([
    ("pos", pa.int64()), ("sheet_id", pa.string()), ("item_ref", pa.string()), ("label_type", pa.string()),
    ("label_data", pa.string()), ("allowed_uses", pa.string()), ("prohibited_uses", pa.string()),
    ("usage_reason", pa.string()), ("data_classification", pa.string()), ("confidence", pa.string()),
    ("notes", pa.string()), ("expected_version", pa.int64()), ("reason", pa.string()), ("row", pa.int64()),
    ("withdraw", pa.bool_()), ("keep_uses", pa.bool_()),
])
_DECIDED_COLUMNS = ("c.id, c.version, c.label_data::VARCHAR, c.created_by, c.updated_by, c.allowed_uses::VARCHAR, "
                    "c.prohibited_uses::VARCHAR, c.usage_reason, c.data_classification::VARCHAR, c.confidence, c.notes")
#: small batches also read what `UpsertOutcome.written` returns about a label left in place
_CURRENT_COLUMNS = _DECIDED_COLUMNS + ", c.created_at, c.updated_at, c.review_state, c.origin, c.label_type_version"
_views = itertools.count()


def records_table(records: list[LabelRecord]) -> pa.Table:
    """Prepared records as an `INCOMING` batch."""
    return pa.table({
        "pos": list(range(len(records))), "sheet_id": [r.sheet_id for r in records],
        "item_ref": [r.item_ref for r in records], "label_type": [r.label_type for r in records],
        "label_data": [r.data_text or canonical_json(r.label_data, what="label_data") for r in records],
        "allowed_uses": [_json_list(r.allowed_uses) for r in records],
        "prohibited_uses": [_json_list(r.prohibited_uses) for r in records],
        "usage_reason": [r.usage_reason for r in records],
        "data_classification": [_json_list(r.data_classification) for r in records],
        "confidence": [r.confidence for r in records], "notes": [r.notes for r in records],
        "expected_version": [r.expected_version for r in records], "reason": [r.reason for r in records],
        "row": [r.row for r in records], "withdraw": [r.withdraw for r in records],
        "keep_uses": [r.keep_uses for r in records],
    }, schema=INCOMING)


def _record(row: dict) -> LabelRecord:
    """A batch row back as a record (for the rows that meet a stored label)."""
    return LabelRecord(
        sheet_id=row["sheet_id"], item_ref=row["item_ref"], label_type=row["label_type"],
        label_data=json.loads(row["label_data"]), allowed_uses=json.loads(row["allowed_uses"]),
        prohibited_uses=json.loads(row["prohibited_uses"]), usage_reason=row["usage_reason"] or "",
        confidence=row["confidence"], notes=row["notes"] or "", expected_version=row["expected_version"],
        reason=row["reason"] or "", row=row["row"], data_classification=json.loads(row["data_classification"]),
        data_text=row["label_data"], withdraw=bool(row["withdraw"]), keep_uses=bool(row["keep_uses"]))


def _current(row: tuple) -> Current:
    (label_id, version, data, created_by, updated_by, allowed, prohibited, reason, tags, confidence, notes) = row[:11]
    return Current(label_id, int(version), json.loads(data), created_by, updated_by, json.loads(allowed),
                   json.loads(prohibited), reason, json.loads(tags), confidence, notes, *row[11:])


def _fetch_current(raw: Any, incoming: pa.Table, view: str) -> dict[int, Current]:
    """The stored label each batch row meets, by the row's position."""
    if incoming.num_rows <= SMALL_BATCH:  # a save from the labeling tool: keyed queries beat a join
        found = {}
        keys = zip(incoming["sheet_id"].to_pylist(), incoming["item_ref"].to_pylist(),
                   incoming["label_type"].to_pylist(), strict=True)
        for pos, key in enumerate(keys):
            rows = raw.execute(f"SELECT {_CURRENT_COLUMNS} FROM canonical_labels c "
                               "WHERE c.sheet_id = ? AND c.item_ref = ? AND c.label_type = ?", list(key)).fetchall()
            if rows:
                found[pos] = _current(rows[0])
        return found
    rows = raw.execute(
        f"SELECT k.pos, {_DECIDED_COLUMNS} FROM {view} k JOIN canonical_labels c "
        "ON c.sheet_id = k.sheet_id AND c.item_ref = k.item_ref AND c.label_type = k.label_type").fetchall()
    return {row[0]: _current(row[1:]) for row in rows}


def _claims_and_current(raw: Any, actor: User, now: Any, incoming: pa.Table) -> tuple[int, int, dict[int, Current]]:
    """`_claim_counts` and `_fetch_current` of a one-row batch, in one statement."""
    row = raw.execute(
        "SELECT o.others, o.mine, " + _CURRENT_COLUMNS + " FROM (SELECT count(*) FILTER (WHERE claimed_by <> $me "
        "AND expires_at > $now) AS others, count(*) FILTER (WHERE claimed_by = $me) AS mine FROM label_claims) o "
        "LEFT JOIN canonical_labels c ON c.sheet_id = $sheet AND c.item_ref = $item AND c.label_type = $type",
        {"me": actor.username, "now": now, "sheet": incoming["sheet_id"][0].as_py(),
         "item": incoming["item_ref"][0].as_py(), "type": incoming["label_type"][0].as_py()}).fetchall()[0]
    return int(row[0]), int(row[1]), ({0: _current(row[2:])} if row[2] is not None else {})


def _claim_counts(raw: Any, actor: User, now: Any) -> tuple[int, int]:
    """(live claims held by others, claims held by the actor): one cheap query, so a save
    without claims around costs no join."""
    row = raw.execute("SELECT count(*) FILTER (WHERE claimed_by <> $me AND expires_at > $now), "
                      "count(*) FILTER (WHERE claimed_by = $me) FROM label_claims",
                      {"me": actor.username, "now": now}).fetchall()[0]
    return int(row[0]), int(row[1])


def _refuse_claimed(raw: Any, actor: User, view: str, now: Any, *, by_row: bool = True) -> None:
    """Claims are enforced here, for every path: a key another user holds refuses the write.
    `by_row`: the batch has positions and file row numbers (a relabel batch has neither)."""
    row_number, order = ("k.row", "k.pos") if by_row else ("NULL", "k.item_ref")
    held = raw.execute(
        f"SELECT k.item_ref, k.label_type, {row_number}, c.claimed_by, c.expires_at FROM {view} k JOIN label_claims c "
        "ON c.sheet_id = k.sheet_id AND c.item_ref = k.item_ref AND c.label_type = k.label_type "
        f"WHERE c.expires_at > ? AND c.claimed_by <> ? ORDER BY {order} LIMIT ?",
        [now, actor.username, MAX_ERRORS_REPORTED]).fetchall()
    if held:
        parts = [(f"row {row}: " if row is not None else "") + f"item {item!r} ({label_type}) is claimed by {by} "
                 f"until {iso(until)}" for item, label_type, row, by, until in held]
        raise ConflictError("; ".join(parts) + "; wait for the claim to expire or ask them to release it",
                            details={"errors": parts})


def _release_own_claims(raw: Any, actor: User, view: str) -> None:
    raw.execute("DELETE FROM label_claims WHERE claimed_by = ? AND (sheet_id, item_ref, label_type) IN "
                f"(SELECT sheet_id, item_ref, label_type FROM {view})", [actor.username])


def upsert_records(
    session: Session, actor: User, records: list[LabelRecord], *, origin: str = "site", action: str = "set"
) -> UpsertOutcome:
    """Apply prepared records inside the caller's transaction (the rules are in the module
    docstring and `decide`). Raises `ConflictError` (nothing written) when another user holds
    a claim on one of the keys."""
    if not records:
        return UpsertOutcome()
    named = {r.label_type: r.label_type_version for r in records if r.label_type_version}  # set by prepare
    return apply_table(session, actor, records_table(records), origin=origin, action=action, records=records,
                       type_versions=named or None)


def apply_table(
    session: Session, actor: User, incoming: pa.Table, *, origin: str = "site", action: str = "set",
    records: list[LabelRecord] | None = None, type_versions: dict[str, str] | None = None,
) -> UpsertOutcome:
    """THE write of canonical labels: apply an `INCOMING` batch (from `records_table` or a
    vectorised file preparation) inside the caller's transaction. Rows that meet a stored label
    are decided one by one by `decide`; rows for new keys (``decide`` says "create" for every one
    of them) are inserted with their history in two ``INSERT … SELECT``s. `type_versions`: the
    label-type version each type's rows were validated against, when not the latest published
    one (recorded on the label and history rows)."""
    if incoming.num_rows == 0:
        return UpsertOutcome()
    if origin not in ORIGINS:
        raise ValidationError(f"unknown label origin {origin!r}; use {', '.join(ORIGINS)}")
    now = utcnow()
    session.flush()
    raw = raw_connection(session)
    view = f"_label_batch_{next(_views)}"
    prefetched: dict[int, Current] | None = None
    if incoming.num_rows == 1:  # a save: the claim counts and the stored label in one statement
        others, mine, prefetched = _claims_and_current(raw, actor, now, incoming)
    else:
        others, mine = _claim_counts(raw, actor, now)
    # A single save with no claims around needs no registered batch (each statement costs, see
    # the save latency in benchmarks/bench_label_write.py).
    registered = bool(others or mine or incoming.num_rows > SMALL_BATCH)
    versions = dict(type_versions or {})  # the versions the records were validated against
    if set(incoming["label_type"].unique().to_pylist()) - set(versions):
        versions = {**_label_type_versions(session, incoming), **versions}
    if registered:
        raw.register(view, incoming)
    versions_registered = False
    try:
        if others:
            _refuse_claimed(raw, actor, view, now)
        current = prefetched if prefetched is not None else _fetch_current(raw, incoming, view)
        if SMALL_BATCH < incoming.num_rows > len(current):  # new keys in bulk: their rows take the versions in SQL
            raw.register("_label_type_versions", pa.table(
                {"name": list(versions), "version": list(versions.values())},
                schema=pa.schema([("name", pa.string()), ("version", pa.string())])))
            versions_registered = True
        if records is None:
            positions = sorted(current)
            met = incoming.take(pa.array(positions, pa.int64())).to_pylist() if positions else []
            by_pos = {pos: _record(row) for pos, row in zip(positions, met, strict=True)}
        else:
            by_pos = dict(enumerate(records))
        written: dict[int, dict | None] | None = {} if incoming.num_rows <= SMALL_BATCH else None
        outcome = _apply_met(session, raw, actor, by_pos, current, origin, action, now, versions, written)
        made = iter(_insert_new(session, raw, view, incoming, set(current), actor, origin, now, versions, written))
        label_ids = (tuple(current[pos].id if pos in current else next(made) for pos in range(incoming.num_rows))
                     if incoming.num_rows <= SMALL_BATCH else ())
        if origin == "site" and mine:
            _release_own_claims(raw, actor, view)
    finally:
        if registered:
            raw.unregister(view)
        if versions_registered:
            raw.unregister("_label_type_versions")
    session.expire_all()
    return UpsertOutcome(created=incoming.num_rows - len(current), updated=outcome[0], unchanged=outcome[1],
                         conflicts=len(outcome[2]), withdrawn=outcome[3], label_ids=label_ids,
                         conflict_ids=tuple(outcome[2]),
                         written=tuple(written.get(pos) for pos in range(incoming.num_rows))
                         if written is not None else ())


def _label_type_versions(session: Session, incoming: pa.Table) -> dict[str, str]:
    """Each label type of the batch → its current published version (what the labels were
    validated against; recorded on every label and history row)."""
    from vital_desktop.services.label_types import get_label_type

    out = {}
    for name in sorted(set(incoming["label_type"].unique().to_pylist())):  # a few names, not a Python list per row
        try:
            out[name] = get_label_type(session, name).version
        except ValidationError:
            continue  # not validated here (e.g. a withdrawal of a type since deleted)
    return out


def _apply_met(session: Session, raw: Any, actor: User, by_pos: dict[int, LabelRecord], current: dict[int, Current],
               origin: str, action: str, now: Any, versions: dict[str, str] | None = None,
               written: dict[int, dict | None] | None = None) -> tuple[int, int, list[str], int]:
    """Decide and write the rows that meet a stored label: (updated, unchanged, conflict ids, withdrawn).
    `written` (small batches): filled with each row's label as left by the write, by position."""
    out: dict[int, dict | None] = written if written is not None else {}
    keep = written is not None
    history_rows: list[dict] = []
    updates: list[dict] = []
    conflicts: list[dict] = []
    withdrawn: list[str] = []
    unchanged = 0
    fresh_ids = iter(new_ids(2 * len(current)))
    for pos in sorted(current):
        rec, cur = by_pos[pos], current[pos]
        decision = decide(rec, cur, actor, origin)
        if decision.outcome == "unchanged":
            unchanged += 1
            if keep:
                out[pos] = _stored(rec, cur)
            continue
        data_text = rec.data_text or canonical_json(rec.label_data, what="label_data")
        allowed, prohibited, reason = effective_uses(rec, cur)
        if decision.outcome == "withdraw":
            row = _row_values(rec, cur.id, cur.version + 1, canonical_json(cur.label_data), cur.allowed_uses,
                              cur.prohibited_uses, cur.usage_reason, actor.username, origin, now)
            row.update(confidence=cur.confidence, notes=cur.notes, data_classification=_json_list(cur.data_classification))
            history_rows.append(_history_values(row, "withdraw", rec.reason or "withdrawn", next(fresh_ids)))
            withdrawn.append(cur.id)
            if keep:
                out[pos] = None
        elif decision.outcome == "conflict":
            if keep:
                out[pos] = {**_stored(rec, cur), "review_state": "conflict"}
            conflicts.append({
                "id": next(fresh_ids), "label_id": cur.id, "sheet_id": rec.sheet_id, "item_ref": rec.item_ref,
                "label_type": rec.label_type, "current_version": cur.version, "proposed_data": data_text,
                "proposed_by": actor.username, "origin": origin, "status": "open", "resolution": "",
                "created_at": now, "kind": decision.kind, "detail": decision.detail,
                "base_version": rec.expected_version, "proposed_allowed_uses": _json_list(allowed),
                "proposed_prohibited_uses": _json_list(prohibited), "proposed_usage_reason": reason,
                "proposed_data_classification": _json_list(rec.data_classification),
                "proposed_confidence": rec.confidence, "proposed_notes": rec.notes,
            })
        else:
            row = _row_values(rec, cur.id, cur.version + 1, data_text, allowed, prohibited, reason, actor.username,
                              origin, now)
            row["label_type_version"] = (versions or {}).get(rec.label_type)
            updates.append(row)
            if keep:
                out[pos] = {**row, "review_state": "ok", "created_by": cur.created_by,
                            "created_at": cur.created_at}
            history_rows.append(_history_values(row, action if action != "set" else "update", rec.reason,
                                                next(fresh_ids)))
    _write(session, raw, updates, history_rows, conflicts, withdrawn)
    return len(updates), unchanged, [c["id"] for c in conflicts], len(withdrawn)


_NEW_LABEL_SQL = (
    "INSERT INTO canonical_labels (id, sheet_id, item_ref, label_type, label_data, version, allowed_uses, "
    "prohibited_uses, usage_reason, data_classification, confidence, notes, review_state, origin, created_by, "
    "created_at, updated_by, updated_at, label_type_version) SELECT n.id, n.sheet_id, n.item_ref, n.label_type, "
    "n.label_data::JSON, 1, n.allowed_uses::JSON, n.prohibited_uses::JSON, n.usage_reason, n.data_classification::JSON, "
    "n.confidence, n.notes, 'ok', $origin, $by, $now, $by, $now, "
    "(SELECT v.version FROM _label_type_versions v WHERE v.name = n.label_type) FROM {source} n")
_NEW_HISTORY_SQL = (
    "INSERT INTO canonical_label_history (id, label_id, sheet_id, item_ref, label_type, version, label_data, "
    "allowed_uses, prohibited_uses, usage_reason, data_classification, confidence, notes, origin, action, reason, "
    "changed_by, changed_at, label_type_version) SELECT n.history_id, n.id, n.sheet_id, n.item_ref, n.label_type, 1, "
    "n.label_data::JSON, n.allowed_uses::JSON, n.prohibited_uses::JSON, n.usage_reason, n.data_classification::JSON, "
    "n.confidence, n.notes, $origin, 'create', n.reason, $by, $now, "
    "(SELECT v.version FROM _label_type_versions v WHERE v.name = n.label_type) FROM {source} n")


def _insert_new(session: Session, raw: Any, view: str, incoming: pa.Table, met: set[int], actor: User, origin: str,
                now: Any, versions: dict[str, str] | None = None, written: dict[int, dict | None] | None = None
                ) -> list[str]:
    """Rows for keys without a stored label become version 1, with their history row. Returns
    the new label ids for small batches (a bulk import does not carry a million ids back)."""
    if len(met) == incoming.num_rows:
        return []
    withdraw = incoming["withdraw"]
    for pos in range(incoming.num_rows) if incoming.num_rows <= SMALL_BATCH else ():
        if pos not in met and withdraw[pos].as_py():
            raise NotFoundError(f"no {incoming['label_type'][pos]} label for item {incoming['item_ref'][pos]} "
                                "to withdraw")
    params = {"origin": origin, "by": actor.username, "now": now}
    if incoming.num_rows <= SMALL_BATCH:  # a save: plain parameterised inserts
        keep = [pos for pos in range(incoming.num_rows) if pos not in met]
        fresh = new_ids(2 * len(keep))
        rows = incoming.take(pa.array(keep, pa.int64())).to_pylist()
        label_sql = (f"INSERT INTO canonical_labels ({', '.join(_LABEL_COLUMNS)}, version, review_state, created_by, "
                     "created_at, label_type_version) VALUES (" + ", ".join(_placeholder(c) for c in _LABEL_COLUMNS)
                     + ", 1, 'ok', ?, ?, ?)")
        for pos, row, label_id, history_id in zip(keep, rows, fresh[:len(keep)], fresh[len(keep):], strict=True):
            values = {**row, "id": label_id, "origin": origin, "updated_by": actor.username, "updated_at": now,
                      "label_type_version": (versions or {}).get(row["label_type"])}  # what it was validated against
            if written is not None:
                written[pos] = {c: values[c] for c in _LABEL_COLUMNS} | {
                    "version": 1, "review_state": "ok", "created_by": actor.username, "created_at": now,
                    "label_type_version": values["label_type_version"]}
            raw.execute(label_sql, [values[c] for c in _LABEL_COLUMNS] + [actor.username, now,
                                                                          values["label_type_version"]])
            history = {**values, "id": history_id, "label_id": label_id, "version": 1, "action": "create",
                       "changed_by": actor.username, "changed_at": now}
            raw.execute(_HISTORY_INSERT_SQL, [history[c] for c in _HISTORY_COLUMNS])
        return fresh[:len(keep)]
    if incoming.filter(incoming["withdraw"]).num_rows:
        raise ValidationError("a bulk batch cannot withdraw labels")
    met_view = f"{view}_met"
    raw.register(met_view, pa.table({"pos": pa.array(sorted(met), pa.int64())}))
    try:
        raw.execute(f"CREATE TEMP TABLE {view}_new AS SELECT uuid()::VARCHAR AS id, uuid()::VARCHAR AS history_id, "
                    f"k.* FROM {view} k ANTI JOIN {met_view} m ON m.pos = k.pos")
        raw.execute(_NEW_LABEL_SQL.format(source=f"{view}_new"), params)
        raw.execute(_NEW_HISTORY_SQL.format(source=f"{view}_new"), params)
        raw.execute(f"DROP TABLE {view}_new")
    finally:
        raw.unregister(met_view)
    return []


_CONFLICT_CASTS = {c: "JSON" for c in ("proposed_data", "proposed_allowed_uses", "proposed_prohibited_uses",
                                       "proposed_data_classification")}


_LABEL_COLUMNS = ("id", "sheet_id", "item_ref", "label_type", "label_data", "allowed_uses", "prohibited_uses",
                  "usage_reason", "data_classification", "confidence", "notes", "origin", "updated_by", "updated_at")
_UPDATE_COLUMNS = ("label_data", "version", "allowed_uses", "prohibited_uses", "usage_reason", "data_classification",
                   "confidence", "notes", "origin", "updated_by", "updated_at", "label_type_version")
_HISTORY_COLUMNS = ("id", "label_id", "sheet_id", "item_ref", "label_type", "version", "label_data", "allowed_uses",
                    "prohibited_uses", "usage_reason", "data_classification", "confidence", "notes", "origin", "action",
                    "reason", "changed_by", "changed_at", "label_type_version")
_JSON_COLUMNS = frozenset({"label_data", "allowed_uses", "prohibited_uses", "data_classification"})


def _placeholder(column: str) -> str:
    return "?::JSON" if column in _JSON_COLUMNS else "?"


#: one history row by parameters (the small-batch paths: a new label's and a changed label's version)
_HISTORY_INSERT_SQL = (f"INSERT INTO canonical_label_history ({', '.join(_HISTORY_COLUMNS)}) VALUES ("
                       + ", ".join(_placeholder(c) for c in _HISTORY_COLUMNS) + ")")


def _write(session: Session, raw: Any, updates: list[dict], history_rows: list[dict], conflicts: list[dict],
           withdrawn: list[str]) -> None:
    if 0 < len(updates) <= SMALL_BATCH:  # a save: keyed by primary key, no Arrow join
        sql = ("UPDATE canonical_labels SET " + ", ".join(f"{c} = {_placeholder(c)}" for c in _UPDATE_COLUMNS)
               + ", review_state = 'ok' WHERE id = ?")
        for row in updates:
            raw.execute(sql, [row[c] for c in _UPDATE_COLUMNS] + [row["id"]])
    elif updates:
        raw.register("_label_updates", pa.Table.from_pylist(updates))
        try:
            raw.execute(
                "UPDATE canonical_labels SET label_data = u.label_data::JSON, version = u.version, "
                "allowed_uses = u.allowed_uses::JSON, prohibited_uses = u.prohibited_uses::JSON, "
                "usage_reason = u.usage_reason, data_classification = u.data_classification::JSON, "
                "confidence = u.confidence, notes = u.notes, origin = u.origin, review_state = 'ok', "
                "updated_by = u.updated_by, updated_at = u.updated_at, label_type_version = u.label_type_version "
                "FROM _label_updates u WHERE canonical_labels.id = u.id")
        finally:
            raw.unregister("_label_updates")
    if 0 < len(history_rows) <= SMALL_BATCH:
        for row in history_rows:
            raw.execute(_HISTORY_INSERT_SQL, [row[c] for c in _HISTORY_COLUMNS])
    elif history_rows:
        insert_arrow(session, "canonical_label_history", pa.Table.from_pylist(history_rows),
                     casts={c: "JSON" for c in _JSON_COLUMNS})
    if withdrawn:
        _by_ids(raw, withdrawn, "DELETE FROM canonical_labels WHERE id IN (SELECT id FROM {view})")
    if conflicts:
        insert_arrow(session, "label_conflicts", pa.Table.from_pylist(conflicts), casts=_CONFLICT_CASTS)
        _by_ids(raw, [c["label_id"] for c in conflicts],
                "UPDATE canonical_labels SET review_state = 'conflict' WHERE id IN (SELECT id FROM {view})")


def _by_ids(raw: Any, ids: list[str], sql: str) -> None:
    raw.register("_write_ids", pa.table({"id": ids}))
    try:
        raw.execute(sql.format(view="_write_ids"))
    finally:
        raw.unregister("_write_ids")


def close_conflict(session: Session, actor: User, conflict_id: str, resolution: str) -> None:
    """Mark a conflict resolved and recompute its label's review state (the resolution's label
    write, if any, went through `upsert_records` first)."""
    conflict = session.get(LabelConflict, conflict_id)
    if conflict is None:
        raise NotFoundError(f"no label conflict {conflict_id!r}")
    conflict.status = "resolved"
    conflict.resolution = resolution
    conflict.resolved_by = actor.username
    conflict.resolved_at = utcnow()
    session.flush()
    still_open = session.scalar(sa.select(sa.func.count()).select_from(LabelConflict).where(
        LabelConflict.label_id == conflict.label_id, LabelConflict.status == "open"))
    session.execute(sa.update(CanonicalLabel).where(CanonicalLabel.id == conflict.label_id).values(
        review_state="conflict" if still_open else "ok"))


@functools.lru_cache(maxsize=256)
def _json_list_cached(items: tuple[str, ...]) -> str:
    return json.dumps(list(items))


def _json_list(items: list[str] | None) -> str:
    return _json_list_cached(tuple(items or ()))


def _row_values(rec: LabelRecord, label_id: str, version: int, data_text: str, allowed: list[str],
                prohibited: list[str], reason: str, by: str, origin: str, now: Any) -> dict:
    return {
        "id": label_id, "sheet_id": rec.sheet_id, "item_ref": rec.item_ref, "label_type": rec.label_type,
        "label_data": data_text, "version": version, "allowed_uses": _json_list(allowed),
        "prohibited_uses": _json_list(prohibited), "usage_reason": reason,
        "data_classification": _json_list(rec.data_classification), "confidence": rec.confidence,
        "notes": rec.notes, "origin": origin, "updated_by": by, "updated_at": now, "label_type_version": None,
    }


def _stored(rec: LabelRecord, cur: Current) -> dict:
    """The stored label `cur` (met by `rec`) as `UpsertOutcome.written` gives it."""
    return {
        "id": cur.id, "sheet_id": rec.sheet_id, "item_ref": rec.item_ref, "label_type": rec.label_type,
        "label_data": canonical_json(cur.label_data), "version": cur.version, "allowed_uses": _json_list(cur.allowed_uses),
        "prohibited_uses": _json_list(cur.prohibited_uses), "usage_reason": cur.usage_reason,
        "data_classification": _json_list(cur.data_classification), "confidence": cur.confidence, "notes": cur.notes,
        "origin": cur.origin, "review_state": cur.review_state, "created_by": cur.created_by,
        "created_at": cur.created_at, "updated_by": cur.updated_by, "updated_at": cur.updated_at,
        "label_type_version": cur.label_type_version,
    }


def _history_values(row: dict, action: str, reason: str, history_id: str) -> dict:
    return {
        "id": history_id, "label_id": row["id"], "sheet_id": row["sheet_id"], "item_ref": row["item_ref"],
        "label_type": row["label_type"], "version": row["version"], "label_data": row["label_data"],
        "allowed_uses": row["allowed_uses"], "prohibited_uses": row["prohibited_uses"],
        "usage_reason": row["usage_reason"], "data_classification": row["data_classification"],
        "confidence": row["confidence"], "notes": row["notes"], "origin": row["origin"], "action": action,
        "reason": reason, "changed_by": row["updated_by"], "changed_at": row["updated_at"],
        "label_type_version": row.get("label_type_version"),
    }

"""Site -> hub exports: the site's new labels, feedback, predictions and Monte Carlo results
since the last export, governed (`core.governance`: nothing restricted leaves without a site
policy), with the signed audit head, signed by the site key and encrypted to the hub.

Split out of `services.exchange` (which re-exports every public name here)."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.bundles import canonical
from vital_desktop.bundles.envelope import PAYLOAD_TYPE_MANIFEST
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import SigningKey
from vital_desktop.bundles.manifest import check_layout, parse_manifest
from vital_desktop.bundles.reader import extract_entry, read_raw
from vital_desktop.bundles.trust import (
    manifest_digest,
    valid_signers,
)
from vital_desktop.bundles.writer import PayloadSource, write_sealed_bundle
from vital_desktop.core.errors import ValidationError, VitalError
from vital_desktop.core.ids import new_id
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services import exchange_channel
from vital_desktop.services.accounts import require
from vital_desktop.services.exchange_site import (
    BUNDLE_SUFFIX,
    EXPORT_LIFETIME,
    SITE_ID_SETTING,
    _get_setting,
    _load_root,
    _now,
    _ts,
    _work_dir,
    site_key,
)
from vital_desktop.store import audit
from vital_desktop.store.bulk import query_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    BundleChannelState,
    BundleLedgerEntry,
)

# --- export ---------------------------------------------------------------------------------------

EXPORT_QUERIES: dict[str, str] = {
    # the site's own label-type versions (its local taxonomy changes), for the hub
    "label_types": """
        SELECT ? AS site_id, t.name, t.version, t.status, t.kind,
               CAST(json_object('name', t.name, 'version', t.version, 'title', t.title, 'description', t.description,
                                'kind', t.kind, 'class_field', t.class_field, 'classes', t.classes,
                                'attributes', t.attributes, 'schema', t.schema, 'change_note', t.change_note)
                    AS VARCHAR) AS document,
               t.created_by, CAST(t.created_at AS TIMESTAMP) AS created_at
        FROM label_types t WHERE t.origin = 'site' AND t.status = 'published'
          AND t.created_at > ? AND t.created_at <= ? ORDER BY t.created_at, t.name""",
    "canonical_labels": """
        SELECT c.id AS label_id, ? AS site_id, c.sheet_id, s.name AS sheet_name, c.item_ref, c.label_type,
               CAST(c.label_data AS VARCHAR) AS label_data, CAST(c.version AS BIGINT) AS version,
               CAST(c.allowed_uses AS VARCHAR) AS allowed_uses, CAST(c.prohibited_uses AS VARCHAR) AS prohibited_uses,
               c.usage_reason, CAST(c.data_classification AS VARCHAR) AS data_classification, c.confidence, c.notes,
               c.review_state, c.origin, c.created_by, c.updated_by, CAST(c.updated_at AS TIMESTAMP) AS updated_at,
               CAST(s.classification AS VARCHAR) AS _sheet_tags
        FROM canonical_labels c LEFT JOIN sheets s ON s.id = c.sheet_id
        WHERE c.updated_at > ? AND c.updated_at <= ? ORDER BY c.updated_at, c.id""",
    "feedback": """
        SELECT f.id, ? AS site_id, f.prediction_id, f.model_id, f.sheet_id, f.item_ref, f.predicted_class,
               f.corrected_class, CAST(f.corrected_label AS VARCHAR) AS corrected_label, f.comment, f.status,
               f.review_note, f.created_by, CAST(f.created_at AS TIMESTAMP) AS created_at, f.reviewed_by,
               CAST(f.reviewed_at AS TIMESTAMP) AS reviewed_at, CAST(s.classification AS VARCHAR) AS _sheet_tags
        FROM feedback_items f LEFT JOIN sheets s ON s.id = f.sheet_id
        WHERE coalesce(f.reviewed_at, f.created_at) > ? AND coalesce(f.reviewed_at, f.created_at) <= ?
        ORDER BY f.created_at, f.id""",
    "predictions": """
        SELECT p.id, ? AS site_id, p.model_id, p.model_name, CAST(p.model_version AS BIGINT) AS model_version, p.kind,
               p.sheet_id, p.item_ref, CAST(p.output AS VARCHAR) AS output, p.predicted_class,
               CAST(p.confidence AS DOUBLE) AS confidence, CAST(p.latency_ms AS DOUBLE) AS latency_ms,
               p.image_mean, p.image_std, p.created_by, CAST(p.created_at AS TIMESTAMP) AS created_at,
               CAST(s.classification AS VARCHAR) AS _sheet_tags
        FROM predictions p LEFT JOIN sheets s ON s.id = p.sheet_id
        WHERE p.created_at > ? AND p.created_at <= ? ORDER BY p.created_at, p.id""",
    "mc_results": """
        SELECT m.id, ? AS site_id, m.name, m.status, CAST(m.config AS VARCHAR) AS config, CAST(m.seed AS BIGINT) AS seed,
               CAST(m.histories AS BIGINT) AS histories, CAST(m.results AS VARCHAR) AS results,
               CAST(m.spectrum AS VARCHAR) AS spectrum, m.engine_version, m.duration_s, m.created_by,
               CAST(m.created_at AS TIMESTAMP) AS created_at
        FROM mc_runs m WHERE m.created_at > ? AND m.created_at <= ? ORDER BY m.created_at, m.id""",
}

EPOCH_START = dt.datetime(1970, 1, 1)


def _governed(table: Any, gate: Any) -> tuple[Any, dict[str, int]]:
    from vital_desktop.services.site import govern_arrow

    return govern_arrow(table, gate)


@dataclass(frozen=True)
class ExportResult:
    path: str
    bundle_id: str
    sequence: int
    rows: dict[str, int]
    size: int
    file_sha256: str
    #: Rows the export gate kept home ({"kind: reason": count}), e.g. PHI without a hub policy.
    withheld: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_gate(session: Session, *, use: str | None, destination: str) -> Any:
    from vital_desktop.services.site import export_gate as gate

    return gate(session, use=use, destination=destination)


def export_bundle(store: Store, *, actor: User, to_dir: Path | str, progress: Progress | None = None,
                  now: int | None = None) -> ExportResult:
    """Write the site's new labels, feedback, predictions and MC results since the last export.

    The file is signed by the site key and encrypted to the hub; it is re-read from the target
    folder and verified before the export is recorded, so "success" means the stick holds it.
    """
    require(actor, "export_bundle")
    progress = progress or Progress()
    now_s = _now(now)
    cut = _ts(now_s)
    assert cut is not None
    key = site_key(store)
    with store.read() as s:
        root = _load_root(s, now_s)
        site_id = _get_setting(s, SITE_ID_SETTING)
        if not site_id:
            raise ValidationError("this store has no site id; run `vital init`")
        state = s.get(BundleChannelState, "exports")
        since = state.issued_at if state is not None and state.issued_at is not None else EPOCH_START
        last_used = s.scalar(sa.select(sa.func.max(BundleLedgerEntry.sequence))
                             .where(BundleLedgerEntry.direction == "site_to_hub")) or 0
        sequence = max(state.sequence if state else 0, int(last_used)) + 1
    work = _work_dir(store, "export")
    try:
        progress.start(len(EXPORT_QUERIES), "reading tables")
        sources, rows = [], {}
        withheld: dict[str, int] = {}
        with store.read() as s:
            gate = export_gate(s, use=None, destination="hub")
            for kind, sql in EXPORT_QUERIES.items():
                table, kept_out = _governed(query_arrow(s, sql, [site_id, since, cut]), gate)
                rows[kind] = table.num_rows
                for reason, count in kept_out.items():
                    withheld[f"{kind}: {reason}"] = count
                target = work / f"{kind}.parquet"
                pq.write_table(table, target)
                sources.append(PayloadSource(kind.replace("_", "-"), kind, f"{kind}.parquet", path=target))
                progress.advance(1)
                progress.check()
            head = audit.signed_head(s)
            chain = audit.verify(s)
        if not chain.ok:
            raise VitalError(f"the audit log does not verify, so no export is written: {chain.reason}")
        if head is None or "signature" not in head:
            raise ValidationError("the audit log has no signed head to send; run `vital audit verify`")
        # The hub checks this head continues the one it saw last (a cut or rewritten log shows there).
        sources.append(PayloadSource("audit-head", "audit_head", "audit_head.json", data=canonical.dumps(head)))
        bundle_id = new_id()
        # Reserve the sequence first: a crash after writing the file can never reuse its number.
        with store.session() as s:
            s.add(BundleLedgerEntry(bundle_id=bundle_id, direction="site_to_hub", channel="exports", epoch=0,
                                    sequence=sequence, issuer=site_id, issued_at=cut, outcome="export_started",
                                    details={"rows": rows}, source_path="", acted_by=actor.username))
        target = Path(to_dir) / f"vital-export-{site_id}-{sequence:06d}{BUNDLE_SUFFIX}"
        written = write_sealed_bundle(target, sources, key, site_id=str(site_id), sequence=sequence,
                                      hub_key_id=root.hub_encryption_key_id, hub_public=root.hub_encryption_public,
                                      issued_at=now_s, expires=now_s + EXPORT_LIFETIME, work_dir=work,
                                      bundle_id=bundle_id)
        _verify_written_export(target, key, written.manifest_sha256, work)
        with store.session() as s:
            s.add(BundleLedgerEntry(bundle_id=bundle_id, file_sha256=written.file_sha256, direction="site_to_hub",
                                    channel="exports", epoch=0, sequence=sequence, issuer=site_id, issued_at=cut,
                                    outcome="exported", details={"rows": rows, "manifest_sha256":
                                                                 written.manifest_sha256},
                                    source_path=str(target), acted_by=actor.username))
            exchange_channel.advance(s, s.get(BundleChannelState, "exports"), "exports", epoch=0, sequence=sequence,
                                     issued_at=cut, bundle_id=bundle_id, manifest_sha256=written.manifest_sha256)
            audit.record(s, actor, "bundle.export", bundle_id, {"sequence": sequence, "rows": rows,
                                                                "withheld": withheld, "path": str(target)})
        progress.finish("export written and verified")
        return ExportResult(str(target), bundle_id, sequence, rows, written.size, written.file_sha256, withheld)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _verify_written_export(target: Path, key: SigningKey, manifest_sha256: str, work: Path) -> None:
    """Re-read what landed on the stick: signature, layout and every entry's hash."""
    check_dir = work / "reread"
    check_dir.mkdir()
    try:
        raw = read_raw(target)
        if manifest_digest(raw.manifest_bytes) != manifest_sha256:
            raise VitalError(f"the export on {target.parent} does not hold the manifest just written")
        if key.key_id not in valid_signers({key.key_id: key.public_raw}, PAYLOAD_TYPE_MANIFEST, raw.manifest_bytes,
                                            raw.signatures):
            raise VitalError(f"the export on {target.parent} does not carry a valid site signature")
        manifest = parse_manifest(raw.manifest_bytes)
        check_layout(manifest, raw.payload_offset, raw.file_size)
        for index, entry in enumerate(manifest.entries):
            extract_entry(target, raw.payload_offset, entry, check_dir / f"entry-{index}")
            (check_dir / f"entry-{index}").unlink()
    except BundleRefused as exc:
        raise VitalError(f"the export written to {target} did not verify when read back: {exc.message}") from exc
    finally:
        shutil.rmtree(check_dir, ignore_errors=True)



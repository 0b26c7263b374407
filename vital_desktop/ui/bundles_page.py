"""Bundles (administrators): what this site trusts, signed bundles checked before import, the
ledger of every bundle seen, and the export of the site's data to the hub.

Verification (`services.exchange.verify_bundle`) runs every check and writes nothing; the page
lists each check with its result and reason, and "Import" is enabled only when the file just
verified would be accepted. Import re-verifies (the file on the stick may have changed since)
and is all-or-nothing; a refusal is recorded in the ledger and shown with its reason.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import Cancelled
from vital_desktop.services import app_update, exchange
from vital_desktop.ui import theme
from vital_desktop.ui.charts import JobProgress, fill_table, read_only_table
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.widgets import (
    Card,
    KeyValuePanel,
    error_text,
    page_layout,
    primary_button,
    show_error,
    title_label,
)
from vital_desktop.ui.workers import Job

OUTCOME_COLORS = {"accepted": theme.SUCCESS, "exported": theme.SUCCESS, "refused": theme.DANGER,
                  "export_started": theme.MUTED, "switched": theme.SUCCESS, "rolled_back": theme.DANGER}


def _when(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)[:16]


class BundlesPage(Page):
    """Trust status, verify → import, ledger, export to the hub."""

    stage = "bundles"
    title = "BUNDLES"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.verified_path: str | None = None
        self.report: dict[str, Any] | None = None
        self.import_job: Job | None = None

        root, header = page_layout(self, "Bundles",
                                   "Signed update bundles from the hub on removable media, and the site's data "
                                   "back to the hub. Nothing is written until every check passed.")
        self.export_button = QPushButton("Export to hub…")
        self.export_button.setToolTip("Write the site's new labels, feedback, predictions and Monte Carlo results "
                                      "since the last export, signed and encrypted to the hub")
        self.export_button.clicked.connect(lambda: self.export())
        header.addWidget(self.export_button)
        self.verify_button = primary_button("Verify bundle…")
        self.verify_button.setToolTip("Check a .vbundle file without importing it (Ctrl+O)")
        self.verify_button.clicked.connect(lambda: self.verify())
        header.addWidget(self.verify_button)
        self.progress = JobProgress()
        root.addWidget(self.progress)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter, 1)
        left = QSplitter(Qt.Orientation.Vertical)
        trust_card = Card("Trust status")
        self.trust = KeyValuePanel()
        trust_card.body.addWidget(self.trust)
        self.keys = read_only_table(["key id", "role", "channels", "expires", "revoked"])
        trust_card.body.addWidget(self.keys, 1)
        left.addWidget(trust_card)
        ledger_card = Card("Ledger (every bundle seen, newest first)")
        self.ledger = read_only_table(["when", "outcome", "direction", "channel", "sequence", "by", "reason"])
        ledger_card.body.addWidget(self.ledger, 1)
        left.addWidget(ledger_card)
        left.setSizes([460, 280])
        splitter.addWidget(left)

        check_card = Card("Verification")
        self.bundle_title = QLabel("No bundle verified yet. Choose “Verify bundle…” to check a file from the stick.")
        self.bundle_title.setWordWrap(True)
        self.bundle_title.setTextFormat(Qt.TextFormat.RichText)
        check_card.body.addWidget(self.bundle_title)
        self.bundle_info = KeyValuePanel()
        check_card.body.addWidget(self.bundle_info)
        check_card.body.addWidget(title_label("Checks"))
        self.checks = QListWidget()
        self.checks.setWordWrap(True)
        check_card.body.addWidget(self.checks, 1)
        check_card.body.addWidget(title_label("Contents"))
        self.entries = read_only_table(["entry", "kind", "size"])
        self.entries.setMaximumHeight(150)
        check_card.body.addWidget(self.entries)
        row = QHBoxLayout()
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.outcome.setTextFormat(Qt.TextFormat.RichText)
        row.addWidget(self.outcome, 1)
        self.import_button = primary_button("Import")
        self.import_button.setToolTip("Import the verified bundle, all or nothing (Ctrl+I)")
        self.import_button.setEnabled(False)
        self.import_button.clicked.connect(lambda: self.import_verified())
        row.addWidget(self.import_button)
        check_card.body.addLayout(row)
        splitter.addWidget(check_card)
        splitter.setSizes([640, 660])
        self.reload()

    # --- trust and ledger -----------------------------------------------------------------------
    def reload(self) -> None:
        def load(op: Any) -> tuple[dict, Any, list]:
            try:
                identity: Any = exchange.site_identity(op.store)
            except Exception as exc:  # noqa: BLE001 - a site without a key still shows the rest
                identity = exc
            return exchange.trust_status(op.store), identity, exchange.ledger(op.store)

        self.context.query("trust and ledger", load, key="bundles.trust", on_result=self._show_trust)

    def _show_trust(self, value: tuple[dict, Any, list]) -> None:
        status, identity, ledger = value
        root_info = status.get("root")
        if root_info:
            # Short one-line rows: a wrapped rich-text label is squeezed and clipped in this card.
            rows = [("Root of trust", root_info["name"]),
                    ("Version", f"version <b>{root_info['version']}</b>, expires {_when(root_info['expires'])}")]
            # One row per root key fingerprint (a multi-line label was clipped by its size hint).
            for number, fingerprint in enumerate(status.get("fingerprints", [])):
                rows.append(("Fingerprints" if number == 0 else "", f"<code>{fingerprint}</code>"))
            if root_info.get("revoked"):
                rows.append(("Revoked keys", ", ".join(root_info["revoked"])))
        else:
            problem = status.get("problem") or "none installed"
            rows = [("Root of trust", f"<b style='color:{theme.DANGER}'>not usable</b>: {problem}")]
        if isinstance(identity, BaseException):
            rows.append(("This site", error_text(identity)))
        else:
            rows.append(("This site", f"{identity.site_id} — key {identity.key_id[:16]}…"))
            rows.append(("Site key", f"<code>{identity.fingerprint}</code>"))
        channels = status.get("channels", [])
        if channels:
            rows.append(("Channels", ", ".join(f"{c['channel']} #{c['sequence']}" for c in channels)))
        self.trust.set_rows(rows, rich=True)
        keys = status.get("keys", [])
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        colors = {}
        for r, k in enumerate(keys):
            expires = k.get("expires_at")
            if k.get("revoked") or (isinstance(expires, dt.datetime) and expires < now):
                colors[(r, 4 if k.get("revoked") else 3)] = theme.DANGER
        fill_table(self.keys, [(k["key_id"][:20] + "…", k["role"], ", ".join(k.get("channels") or []),
                                _when(k.get("expires_at")) if k.get("expires_at") else "—",
                                "REVOKED" if k.get("revoked") else "no") for k in keys], colors=colors)
        fill_table(self.ledger, [(_when(e["at"]), e["outcome"], e["direction"], e["channel"] or "—",
                                  e["sequence"] if e["sequence"] is not None else "—", e["by"],
                                  e["reason"] or ("" if e["outcome"] != "refused" else e["code"]))
                                 for e in ledger],
                   colors={(r, 1): OUTCOME_COLORS.get(e["outcome"], theme.TEXT) for r, e in enumerate(ledger)})

    # --- verify -----------------------------------------------------------------------------------
    def verify(self, path: str | None = None) -> None:
        """Check a bundle file (every check, nothing written) and show the result."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Verify a bundle", "", "VITAL bundles (*.vbundle);;All files (*)")
            if not path:
                return
        self.verified_path = None
        self.import_button.setEnabled(False)
        self.bundle_title.setText(f"Verifying <b>{Path(path).name}</b>…")
        self.checks.clear()
        def check(op: Any) -> dict[str, Any]:
            report = exchange.verify_bundle(op.store, path, progress=op.progress)
            if report.get("channel") == "app":  # an application update: its own checks (platform, version…)
                report = app_update.verify_here(op.store, path)
            return report

        job = self.context.query(f"Verifying {Path(path).name}", check,
                                 on_result=lambda report: self.show_report(path, report),
                                 on_error=lambda exc: self._verify_failed(path, exc), cancellable=True, visible=True)
        self.progress.follow(job)

    def _verify_failed(self, path: str, exc: BaseException) -> None:
        self.report = None
        self.bundle_title.setText(f"<b>{Path(path).name}</b> could not be checked")
        self.outcome.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
        if not isinstance(exc, Cancelled):
            show_error(self, "Verify bundle", exc)

    def show_report(self, path: str, report: dict[str, Any]) -> None:
        """Each check as pass/fail with its reason; Import only when the outcome is ok."""
        self.report = report
        self.bundle_title.setText(f"<b>{Path(path).name}</b>")
        sequence = report.get("sequence") if report.get("sequence") is not None else "—"
        epoch = report.get("epoch") if report.get("epoch") is not None else "—"
        self.bundle_info.set_rows([
            ("Channel", f"{report.get('channel') or '—'} #{sequence} (epoch {epoch})"),
            ("Issuer", report.get("issuer") or "—"),
            ("Issued / expires", f"{report.get('issued_at') or '—'} / {report.get('expires') or '—'}"),
            ("Signed by", ", ".join(s[:16] + "…" for s in report.get("signers", [])) or "no valid signature"),
            ("File SHA-256", report.get("file_sha256") or "—"),
        ])
        self.checks.clear()
        for check in report.get("checks", []):
            mark = "✔" if check["ok"] else "✘"
            text = f"{mark}  {check['check']}" + (f" — {check['message']}" if check.get("message") else "")
            item = QListWidgetItem(text)
            item.setForeground(QBrush(QColor(theme.SUCCESS if check["ok"] else theme.DANGER)))
            item.setToolTip(check.get("code") or "")
            self.checks.addItem(item)
        outcome = report.get("outcome")
        if outcome == "refused" and not any(not c["ok"] for c in report.get("checks", [])):
            item = QListWidgetItem(f"✘  {report.get('code') or 'refused'} — {report.get('reason')}")
            item.setForeground(QBrush(QColor(theme.DANGER)))
            self.checks.addItem(item)
        fill_table(self.entries, [(e.get("name") or e.get("id"), e.get("kind"), f"{int(e.get('length', 0)):,} bytes")
                                  for e in report.get("entries", [])])
        if outcome == "ok":
            self.verified_path = path
            self.outcome.setText(f"<b style='color:{theme.SUCCESS}'>Every check passed.</b> Import applies it in one "
                                 "transaction.")
        elif outcome == "already_imported":
            self.outcome.setText("This bundle was already imported; importing again changes nothing.")
        else:
            self.outcome.setText(f"<b style='color:{theme.DANGER}'>Refused:</b> {report.get('reason') or 'a check failed'}")
        self.import_button.setEnabled(outcome == "ok")

    # --- import -----------------------------------------------------------------------------------
    def import_verified(self) -> None:
        """Import the bundle that just verified (re-checked inside the import; all or nothing)."""
        path = self.verified_path
        if not path or self.progress.running():
            return
        self.import_button.setEnabled(False)

        if (self.report or {}).get("channel") == "app":
            self._install_update(path)
            return

        def work(op: Any) -> tuple[exchange.ImportResult, Changes]:
            result = exchange.import_bundle(op.store, actor=op.actor, path=path, progress=op.progress)
            return result, result.changes | Changes(bundles=True)

        def done(result: exchange.ImportResult) -> None:
            self.verified_path = None
            summary = readable_summary(result.summary)
            self.outcome.setText(f"<b style='color:{theme.SUCCESS}'>Imported</b> ({result.channel} #{result.sequence}). "
                                 f"{summary}")
            self.context.say(f"Bundle {result.bundle_id[:8]} imported")
            self.reload()

        def failed(exc: BaseException) -> None:
            self.outcome.setText(f"<b style='color:{theme.DANGER}'>Import refused:</b> {error_text(exc)} — "
                                 "nothing was changed; the refusal is in the ledger.")
            self.reload()
            if not isinstance(exc, Cancelled):
                show_error(self, "Import bundle", exc)

        self.import_job = self.context.change(f"Importing {Path(path).name}", work, on_result=done,
                                              on_error=failed, cancellable=True)
        self.progress.follow(self.import_job)

    def _install_update(self, path: str) -> None:
        """An application update: unpacked beside this version, started at the next start."""
        def work(op: Any) -> tuple[app_update.AppUpdateResult, Changes]:
            return app_update.update_here(op.store, actor=op.actor, path=path, progress=op.progress), Changes(bundles=True)

        def done(result: app_update.AppUpdateResult) -> None:
            self.verified_path = None
            self.outcome.setText(f"<b style='color:{theme.SUCCESS}'>VITAL Desktop {result.version} is ready</b>: it "
                                 "starts the next time the app starts, if its self-check passes (otherwise "
                                 f"{result.from_version} keeps running and the reason is in the ledger).")
            self.reload()

        def failed(exc: BaseException) -> None:
            self.outcome.setText(f"<b style='color:{theme.DANGER}'>Update refused:</b> {error_text(exc)} — nothing "
                                 "was installed; the refusal is in the ledger.")
            self.reload()
            if not isinstance(exc, Cancelled):
                show_error(self, "Install application update", exc)

        self.import_job = self.context.change(f"Installing {Path(path).name}", work, on_result=done,
                                              on_error=failed, cancellable=True)
        self.progress.follow(self.import_job)

    # --- export -----------------------------------------------------------------------------------
    def export(self, folder: str | None = None) -> None:
        """Write the site's export bundle (labels, feedback, predictions, MC results) into a folder."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export to hub: choose the folder on the stick")
            if not folder:
                return
        def work(op: Any) -> tuple[exchange.ExportResult, Changes]:
            return (exchange.export_bundle(op.store, actor=op.actor, to_dir=folder, progress=op.progress),
                    Changes(bundles=True))

        def done(result: exchange.ExportResult) -> None:
            rows = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.rows.items())
            self.outcome.setText(f"<b style='color:{theme.SUCCESS}'>Exported</b> {Path(result.path).name} "
                                 f"(#{result.sequence}, {result.size:,} bytes, verified on the target): {rows}")
            self.context.say(f"Export written to {result.path}")
            self.reload()

        job = self.context.change("Exporting to hub", work, on_result=done,
                                  on_error=lambda exc: show_error(self, "Export to hub", exc), cancellable=True)
        self.progress.follow(job)

    # --- page protocol --------------------------------------------------------------------------
    def on_changes(self, changes: Changes) -> None:
        if changes.bundles:
            self.reload()

    def activate(self, **arguments: Any) -> None:
        self.reload()


def readable_summary(summary: dict[str, Any]) -> str:
    """An import summary as words: 'templates added: Hub Defect Triage@1.0.0; labels: 12' (not Python reprs)."""
    parts = []
    for key, value in summary.items():
        if isinstance(value, (list, tuple, set)):
            text = ", ".join(str(v) for v in value) if value else "none"
        elif isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        else:
            text = str(value)
        parts.append(f"{key.replace('_', ' ')}: {text}")
    return "; ".join(parts)

"""The hash-chained audit log detects edited and deleted rows."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import cli_env
from vital_desktop.cli import main
from vital_desktop.services import site
from vital_desktop.store import open_store
from vital_desktop.store.db import STORE_FILENAME


def _write_some_history(small_site) -> None:
    from vital_desktop.services import labels

    for i in range(3):
        labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Crystals",
                         item_ref=f"INS-000{i}", label_type="classification", label_data={"defect_type": "crack"})


def test_intact_chain_verifies(small_site) -> None:
    _write_some_history(small_site)
    result = site.verify_audit(small_site.store)
    assert result.ok and result.rows >= 8


@pytest.mark.parametrize("tamper", ["edit", "delete", "delete_newest"])
def test_tampering_is_reported_at_the_first_broken_row(small_site, tamper: str, monkeypatch, capsys) -> None:
    _write_some_history(small_site)
    seqs = [r["seq"] for r in reversed(site.audit_log(small_site.store, limit=100))]
    victim = seqs[len(seqs) // 2]
    small_site.store.close()
    conn = duckdb.connect(str(small_site.home / STORE_FILENAME))
    if tamper == "edit":
        conn.execute("UPDATE audit_log SET details = '{\"forged\":true}' WHERE seq = ?", [victim])
        expected = victim
    elif tamper == "delete":
        conn.execute("DELETE FROM audit_log WHERE seq = ?", [victim])
        expected = seqs[seqs.index(victim) + 1]
    else:  # removing the newest rows breaks no link; the recorded head catches it
        conn.execute("DELETE FROM audit_log WHERE seq >= ?", [seqs[-2]])
        expected = seqs[-1]
    conn.close()
    store = open_store(small_site.home)
    result = site.verify_audit(store)
    store.close()
    assert not result.ok
    assert result.first_broken_seq == expected
    # The CLI reports it and exits non-zero.
    for key, value in cli_env("admin").items():
        monkeypatch.setenv(key, value)
    code = main(["--home", str(small_site.home), "--json", "audit", "verify"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"row {expected}" in err
    small_site.store = open_store(small_site.home)

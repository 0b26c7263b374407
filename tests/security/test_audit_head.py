"""The audit log's head is signed with the site key: cutting or rewriting the log is detected."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pytest

from vital_desktop.services import exchange, labels, site
from vital_desktop.store import audit, open_store
from vital_desktop.store.db import STORE_FILENAME


@pytest.fixture
def keyed_site(small_site):
    exchange.ensure_site_identity(small_site.store, "site-x")
    for i in range(3):
        labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Crystals",
                         item_ref=f"INS-000{i}", label_type="classification", label_data={"defect_type": "crack"})
    assert site.verify_audit(small_site.store).ok
    head = audit_head(small_site)
    assert head["signature"] and head["key_id"]
    small_site.store.close()
    yield small_site
    small_site.store = open_store(small_site.home)


def audit_head(small_site) -> dict:
    with small_site.store.read() as s:
        return audit.signed_head(s)


def _tamper(home, *statements: tuple[str, list]) -> audit.AuditVerification:
    conn = duckdb.connect(str(home / STORE_FILENAME))
    for sql, params in statements:
        conn.execute(sql, params)
    conn.close()
    store = open_store(home)
    try:
        return site.verify_audit(store)
    finally:
        store.close()


def test_deleting_every_row_and_the_head_is_detected(keyed_site) -> None:
    result = _tamper(keyed_site.home, ("DELETE FROM audit_log", []), ("DELETE FROM settings WHERE key = 'audit_head'", []))
    assert not result.ok and "head is missing" in result.reason


def test_deleting_only_the_head_is_detected(keyed_site) -> None:
    result = _tamper(keyed_site.home, ("DELETE FROM settings WHERE key = 'audit_head'", []))
    assert not result.ok and "head is missing" in result.reason


def test_a_malformed_head_is_detected(keyed_site) -> None:
    result = _tamper(keyed_site.home, ("UPDATE settings SET value = '\"nonsense\"' WHERE key = 'audit_head'", []))
    assert not result.ok and "malformed" in result.reason


def test_a_gap_in_sequence_numbers_is_detected(keyed_site) -> None:
    """Remove a row and re-link the chain around it: every hash holds, only the numbering tells."""
    conn = duckdb.connect(str(keyed_site.home / STORE_FILENAME))
    rows = conn.execute("SELECT seq, logged_at, username, action, target, details FROM audit_log ORDER BY seq").fetchall()
    conn.close()
    victim = rows[len(rows) // 2][0]
    statements = [("DELETE FROM audit_log WHERE seq = ?", [victim])]
    prev = audit.GENESIS
    for seq, at, user, action, target, details in rows:
        if seq == victim:
            continue
        row_hash = audit._row_hash(prev, seq, audit._at_text(at), user, action, target, details)
        statements.append(("UPDATE audit_log SET prev_hash = ?, row_hash = ? WHERE seq = ?", [prev, row_hash, seq]))
        prev = row_hash
    result = _tamper(keyed_site.home, *statements)
    assert not result.ok and "gap" in result.reason and result.first_broken_seq == victim + 1


def _rewrite(rows: list, forged_details: str) -> tuple[list, str, int]:
    """Edit the last row and recompute the whole chain consistently (what an attacker without the key can do)."""
    statements = []
    prev = audit.GENESIS
    last_seq = 0
    for index, (seq, at, user, action, target, details) in enumerate(rows):
        if index == len(rows) - 1:
            details = forged_details
            statements.append(("UPDATE audit_log SET details = ? WHERE seq = ?", [details, seq]))
        row_hash = audit._row_hash(prev, seq, audit._at_text(at), user, action, target, details)
        statements.append(("UPDATE audit_log SET prev_hash = ?, row_hash = ? WHERE seq = ?", [prev, row_hash, seq]))
        prev, last_seq = row_hash, seq
    return statements, prev, last_seq


def test_a_consistent_rewrite_without_the_key_is_detected(keyed_site) -> None:
    conn = duckdb.connect(str(keyed_site.home / STORE_FILENAME))
    rows = conn.execute("SELECT seq, logged_at, username, action, target, details FROM audit_log ORDER BY seq").fetchall()
    old_head = json.loads(conn.execute("SELECT value FROM settings WHERE key = 'audit_head'").fetchone()[0])
    conn.close()
    statements, new_hash, last_seq = _rewrite(rows, '{"forged":true}')
    # The attacker keeps the old signature (the only one they have) on the new head.
    head = {**old_head, "seq": last_seq, "hash": new_hash}
    statements.append(("UPDATE settings SET value = ? WHERE key = 'audit_head'", [json.dumps(head)]))
    result = _tamper(keyed_site.home, *statements)
    assert not result.ok and "signature does not verify" in result.reason


def test_a_head_signed_by_another_key_is_detected(keyed_site) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    conn = duckdb.connect(str(keyed_site.home / STORE_FILENAME))
    head = json.loads(conn.execute("SELECT value FROM settings WHERE key = 'audit_head'").fetchone()[0])
    conn.close()
    other = Ed25519PrivateKey.generate()
    head["signature"] = other.sign(audit.head_message(head["seq"], head["hash"])).hex()
    result = _tamper(keyed_site.home, ("UPDATE settings SET value = ? WHERE key = 'audit_head'", [json.dumps(head)]))
    assert not result.ok and "signature does not verify" in result.reason


def test_an_unsigned_head_on_a_site_with_a_key_is_detected(keyed_site) -> None:
    conn = duckdb.connect(str(keyed_site.home / STORE_FILENAME))
    head = json.loads(conn.execute("SELECT value FROM settings WHERE key = 'audit_head'").fetchone()[0])
    conn.close()
    head.pop("signature")
    result = _tamper(keyed_site.home, ("UPDATE settings SET value = ? WHERE key = 'audit_head'", [json.dumps(head)]))
    assert not result.ok and "not signed" in result.reason


def test_the_head_signature_is_checkable_with_the_site_public_key(keyed_site) -> None:
    store = open_store(keyed_site.home)
    try:
        with store.read() as s:
            head = audit.signed_head(s)
        key = exchange.site_key(store)
    finally:
        store.close()
    public = key.public_raw
    assert head["key_id"] == hashlib.sha256(public).hexdigest() == key.key_id
    assert audit.verify_head_signature(public, head)
    assert not audit.verify_head_signature(public, {**head, "seq": head["seq"] + 1})


def test_site_and_hub_sign_and_check_the_same_head_bytes() -> None:
    from vital_desktop.bundles.trust import audit_head_message

    assert audit.head_message(12, "ab" * 32) == audit_head_message(12, "ab" * 32)


def test_the_hub_refuses_an_export_head_that_does_not_continue_the_last_one() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from vital_desktop.bundles.keys import SigningKey
    from vital_desktop.bundles.trust import audit_head_message, check_audit_head

    key = SigningKey.generate()

    def head(seq: int, row_hash: str, signer=None) -> dict:
        sign = (signer or key).sign
        return {"seq": seq, "hash": row_hash, "key_id": key.key_id,
                "signature": sign(audit_head_message(seq, row_hash)).hex()}

    previous = {"seq": 40, "hash": "aa" * 32}
    assert check_audit_head(head(41, "bb" * 32), key.public_raw, previous).ok
    assert check_audit_head(head(40, "aa" * 32), key.public_raw, previous).ok  # nothing new since
    cut = check_audit_head(head(12, "cc" * 32), key.public_raw, previous)
    assert not cut.ok and cut.code == "audit_rewritten"
    rewritten = check_audit_head(head(40, "dd" * 32), key.public_raw, previous)
    assert not rewritten.ok and rewritten.code == "audit_rewritten"
    other = Ed25519PrivateKey.generate()
    forged = check_audit_head(head(41, "bb" * 32, signer=other), key.public_raw, previous)
    assert not forged.ok and forged.code == "audit_head"


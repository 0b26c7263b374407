"""One named test per threat in issue 6: malicious input built by the simulator -> refused, store unchanged.

Each test goes through the real import (`services.exchange.import_bundle`) on a real DuckDB
store; `BundleSite.refused` compares every table before and after (except the ledger row the
refusal adds and the audit log) and checks the ledger names the refusal.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
import sqlalchemy as sa

from vital_desktop.bundles import canonical, samples
from vital_desktop.bundles.envelope import PAYLOAD_TYPE_MANIFEST, Signature, sign
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import SigningKey
from vital_desktop.bundles.layout import HEADER, MAGIC
from vital_desktop.bundles.simulator import DAY, NOW, Payload
from vital_desktop.services import exchange
from vital_desktop.store.models import AuditEntry, ModelRow, Setting


def _models(site, **kwargs):
    return site.hub.build("models", site.hub.model_payloads(), **kwargs)


# --- signatures and keys ------------------------------------------------------------------------


def test_garbage_signature_refused(bundle_site):
    key = bundle_site.hub.channel_keys["models"][0]
    built = _models(bundle_site, signatures=[Signature(key.key_id, os.urandom(64))])
    bundle_site.refused(built.path, "signature")


def test_empty_signature_list_refused(bundle_site):
    built = _models(bundle_site, signatures=[])
    bundle_site.refused(built.path, "no_signatures")


def test_unknown_key_refused(bundle_site):
    built = _models(bundle_site, signers=[SigningKey.generate()])
    bundle_site.refused(built.path, "unknown_key")


def test_missing_trust_store_fails_closed(bundle_site):
    with bundle_site.store.session() as s:
        s.delete(s.get(Setting, exchange.ROOT_SETTING))
    built = _models(bundle_site)
    bundle_site.refused(built.path, "trust_store")


def test_corrupt_trust_store_fails_closed(bundle_site):
    with bundle_site.store.session() as s:
        row = s.get(Setting, exchange.ROOT_SETTING)
        row.value = row.value.replace('"payload":"', '"payload":"AAAA')
    built = _models(bundle_site)
    bundle_site.refused(built.path, "trust_store")


def test_trust_store_with_forged_key_fails_closed(bundle_site):
    """A root edited in the database (a key added) no longer carries its threshold: fail closed."""
    forged = bundle_site.hub.make_root(1, signers=[SigningKey.generate(), SigningKey.generate()])
    with bundle_site.store.session() as s:
        s.get(Setting, exchange.ROOT_SETTING).value = forged.decode()
    bundle_site.refused(_models(bundle_site).path, "trust_store")


def test_same_signature_twice_does_not_reach_threshold(bundle_site):
    """config needs two keys; one key's signature repeated must not count twice."""
    key = bundle_site.hub.channel_keys["config"][0]
    payload = [Payload("config", "config", "settings.json", canonical.dumps({"hub.notice": "hello"}))]
    body_holder = {}

    def capture(document):
        body_holder["doc"] = document

    built = bundle_site.hub.build("config", payload, signers=[key], edit=capture)
    doubled = built.signatures * 2
    again = bundle_site.hub.build("config", payload, sequence=built.manifest["sequence"],
                                  manifest_bytes=built.manifest_bytes, signatures=doubled)
    bundle_site.refused(again.path, "threshold")


def test_two_config_keys_accepted(bundle_site):
    payload = [Payload("config", "config", "settings.json", canonical.dumps({"hub.notice": "hello"}))]
    result = bundle_site.import_(bundle_site.hub.build("config", payload).path)
    assert result.outcome == "accepted"
    with bundle_site.store.read() as s:
        assert s.get(Setting, "hub.notice").value == "hello"


def test_key_used_outside_its_channel_refused(bundle_site):
    built = _models(bundle_site, signers=bundle_site.hub.channel_keys["templates"])
    bundle_site.refused(built.path, "key_scope")


def test_root_key_cannot_sign_models(bundle_site):
    built = _models(bundle_site, signers=bundle_site.hub.root_keys)
    bundle_site.refused(built.path, "key_scope")


def test_expired_key_refused(bundle_site):
    later = bundle_site.hub.key_expires + DAY
    built = _models(bundle_site, issued_at=later - 60)
    bundle_site.refused(built.path, "key_expired", now=later)


def test_revoked_key_refused(bundle_site):
    hub = bundle_site.hub
    old_models_key = hub.channel_keys["models"][0]
    hub.rotation(revoke=[old_models_key.key_id], new_models_key=True)
    rotation = hub.build("truststore", [Payload("root-v2", "root_metadata", "root-v2.json", hub.roots[2])])
    assert bundle_site.import_(rotation.path).outcome == "accepted"
    built = _models(bundle_site, signers=[old_models_key])
    bundle_site.refused(built.path, "key_revoked")
    # The new key works.
    assert bundle_site.import_(_models(bundle_site).path).outcome == "accepted"


# --- versions, replays, time ---------------------------------------------------------------------


def test_rollback_to_lower_version_refused(bundle_site):
    hub = bundle_site.hub
    bundle_site.import_(_models(bundle_site, sequence=5).path)
    old = hub.build("models", hub.model_payloads(version=3), sequence=4)
    bundle_site.refused(old.path, "rollback")


def test_replay_of_imported_bundle_is_a_noop(bundle_site):
    built = _models(bundle_site)
    assert bundle_site.import_(built.path).outcome == "accepted"
    before = bundle_site.snapshot()
    ledger_before = exchange.ledger(bundle_site.store)
    again = bundle_site.import_(built.path)
    assert again.outcome == "already_imported"
    assert bundle_site.snapshot() == before
    assert exchange.ledger(bundle_site.store) == ledger_before


def test_replay_of_older_imported_bundle_refused(bundle_site):
    first = _models(bundle_site)
    bundle_site.import_(first.path)
    bundle_site.import_(bundle_site.hub.build("models", bundle_site.hub.model_payloads(version=3)).path)
    # The first bundle's exact bytes come back: its version is accepted, so it is the no-op answer...
    assert bundle_site.import_(first.path).outcome == "already_imported"
    # ...but a re-signed copy with a fresh id and that old sequence is a rollback.
    old = bundle_site.hub.build("models", bundle_site.hub.model_payloads(version=4), sequence=1)
    bundle_site.refused(old.path, ("rollback", "same_version_different_content"))


def test_same_version_different_content_raises_alarm(bundle_site):
    hub = bundle_site.hub
    bundle_site.import_(_models(bundle_site, sequence=7).path)
    other = hub.build("models", hub.model_payloads(version=9), sequence=7)
    with bundle_site.store.read() as s:
        alarms_before = s.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "bundle.alarm"))
    bundle_site.refused(other.path, "same_version_different_content")
    with bundle_site.store.read() as s:
        alarms = s.scalar(sa.select(sa.func.count()).where(AuditEntry.action == "bundle.alarm"))
    assert alarms == alarms_before + 1


def test_expired_bundle_refused_freeze(bundle_site):
    built = _models(bundle_site, issued_at=NOW - 40 * DAY, expires=NOW - DAY)
    bundle_site.refused(built.path, "expired")


def test_future_dated_bundle_refused(bundle_site):
    built = _models(bundle_site, issued_at=NOW + 3600)
    bundle_site.refused(built.path, "future_dated")


def test_clock_behind_newest_accepted_refused(bundle_site):
    bundle_site.import_(_models(bundle_site).path)
    templates = bundle_site.hub.build("templates", bundle_site.hub.template_payload(), issued_at=NOW - 2 * DAY - 60)
    bundle_site.refused(templates.path, "clock_behind", now=NOW - 2 * DAY)


def test_issued_before_newest_of_channel_refused(bundle_site):
    bundle_site.import_(_models(bundle_site, sequence=1).path)
    older = bundle_site.hub.build("models", bundle_site.hub.model_payloads(version=5), sequence=2,
                                  issued_at=NOW - 5 * DAY)
    bundle_site.refused(older.path, "issued_before_newest")


def test_bundle_for_another_site_refused(bundle_site):
    bundle_site.refused(_models(bundle_site, sites=["site-b"]).path, "wrong_site")


def test_bundle_for_another_app_version_refused(bundle_site):
    built = _models(bundle_site, app_min="2.0.0", app_below="3.0.0")
    bundle_site.refused(built.path, "app_version")


# --- payload integrity and layout ---------------------------------------------------------------


def test_payload_swapped_in_from_another_valid_bundle_refused(bundle_site):
    hub = bundle_site.hub
    good = _models(bundle_site)
    other = hub.build("models", hub.model_payloads(onnx_bytes=samples.tiny_classifier_onnx(seed=9)))
    # Same lengths, other bytes: the signed SHA-256 catches it.
    assert len(good.payload) == len(other.payload)
    swapped = hub.build("models", [], sequence=good.manifest["sequence"], manifest_bytes=good.manifest_bytes,
                        signatures=good.signatures, payload_override=other.payload)
    bundle_site.refused(swapped.path, "payload_hash")


def test_bytes_not_covered_by_manifest_refused(bundle_site):
    bundle_site.refused(_models(bundle_site, tail=b"unsigned extra bytes").path, "trailing_bytes")


def test_truncated_payload_refused(bundle_site):
    bundle_site.refused(_models(bundle_site, cut=10).path, "truncated")


@pytest.mark.parametrize("length", [2**64, 2**53 + 1, -1, 10**12])
def test_declared_lengths_that_overflow_refused(bundle_site, length):
    built = _models(bundle_site)
    first = built.manifest["entries"][0]["length"]
    body = built.manifest_bytes.replace(b'"length":%d' % first, b'"length":%d' % length, 1)
    forged = bundle_site.hub.build("models", bundle_site.hub.model_payloads(), manifest_bytes=body)
    bundle_site.refused(forged.path, ("manifest_schema", "json", "layout"))


def test_declared_lengths_that_lie_refused(bundle_site):
    def edit(document):
        document["entries"][0]["length"] -= 5  # the card then starts inside the model
    bundle_site.refused(_models(bundle_site, edit=edit).path, "layout")


def test_overlapping_offsets_refused(bundle_site):
    def edit(document):
        document["entries"][1]["offset"] = 0
    bundle_site.refused(_models(bundle_site, edit=edit).path, "layout")


def test_huge_file_is_refused_without_reading_it(bundle_site, tmp_path):
    huge = tmp_path / "huge.vbundle"
    with open(huge, "wb") as handle:
        handle.write(HEADER.pack(MAGIC, 1, 0, 100))
        handle.truncate(9 * 1024**3)  # sparse: 9 GiB declared, nothing read
    bundle_site.refused(huge, "too_large")


def test_huge_manifest_length_in_header_refused(bundle_site, tmp_path):
    path = tmp_path / "big-manifest.vbundle"
    path.write_bytes(HEADER.pack(MAGIC, 1, 0, 2**32 - 1) + b"{}")
    bundle_site.refused(path, "manifest_size")


@pytest.mark.parametrize("name", ["../x", "C:\\x", "/x", "CON", "nul.txt", "Lpt1", "a\x00b", "x/../../etc", "..", "a."])
def test_path_like_logical_names_refused(bundle_site, name):
    def edit(document):
        document["entries"][1]["name"] = name
    bundle_site.refused(_models(bundle_site, edit=edit).path, ("manifest_schema", "entry_name"))


def test_symlink_on_stick_refused(bundle_site, tmp_path):
    link = tmp_path / "link.vbundle"
    link.symlink_to(_models(bundle_site).path)
    bundle_site.refused(link, "not_regular_file")


def test_fifo_on_stick_refused(bundle_site, tmp_path):
    fifo = tmp_path / "fifo.vbundle"
    os.mkfifo(fifo)
    bundle_site.refused(fifo, "not_regular_file")


def test_duplicate_entry_ids_refused(bundle_site):
    def edit(document):
        document["entries"][1]["id"] = document["entries"][0]["id"]
    bundle_site.refused(_models(bundle_site, edit=edit).path, "entry_duplicate")


def test_entry_names_differing_only_in_case_refused(bundle_site):
    def edit(document):
        document["entries"][1]["name"] = document["entries"][0]["name"].upper()
    bundle_site.refused(_models(bundle_site, edit=edit).path, "entry_duplicate")


# --- manifest JSON ------------------------------------------------------------------------------


def _signed_raw_manifest(site, body: bytes):
    return site.hub.build("models", site.hub.model_payloads(), manifest_bytes=body)


def test_duplicate_json_keys_refused(bundle_site):
    built = _models(bundle_site)
    body = built.manifest_bytes.replace(b'{"bundle_id":', b'{"bundle_id":"x","bundle_id":', 1)
    bundle_site.refused(_signed_raw_manifest(bundle_site, body).path, "json_duplicate_key")


def test_nan_in_manifest_refused(bundle_site):
    built = _models(bundle_site)
    body = built.manifest_bytes.replace(b'"epoch":0', b'"epoch":NaN', 1)
    bundle_site.refused(_signed_raw_manifest(bundle_site, body).path, "json_constant")


def test_float_in_manifest_refused(bundle_site):
    built = _models(bundle_site)
    body = built.manifest_bytes.replace(b'"epoch":0', b'"epoch":0.5', 1)
    bundle_site.refused(_signed_raw_manifest(bundle_site, body).path, "json_float")


def test_trailing_bytes_after_manifest_json_refused(bundle_site):
    built = _models(bundle_site)
    bundle_site.refused(_signed_raw_manifest(bundle_site, built.manifest_bytes + b" {}").path, "json")


def test_non_canonical_manifest_refused(bundle_site):
    built = _models(bundle_site)
    body = built.manifest_bytes.replace(b'"epoch":0', b'"epoch": 0', 1)
    bundle_site.refused(_signed_raw_manifest(bundle_site, body).path, "json_not_canonical")


def test_deeply_nested_manifest_with_bad_signature_not_parsed(bundle_site, monkeypatch):
    from vital_desktop.bundles import canonical as canonical_module
    from vital_desktop.bundles import manifest as manifest_module

    calls = []
    original = canonical_module.loads

    def spy(data, **kwargs):
        calls.append(len(data))
        return original(data, **kwargs)

    monkeypatch.setattr(canonical_module, "loads", spy)
    monkeypatch.setattr(manifest_module.canonical, "loads", spy)
    body = b"[" * 200_000 + b"]" * 200_000
    key = bundle_site.hub.channel_keys["models"][0]
    built = bundle_site.hub.build("models", [], manifest_bytes=body, signatures=[Signature(key.key_id, b"\x00" * 64)])
    calls.clear()
    bundle_site.refused(built.path, "signature")
    assert all(n != len(body) for n in calls), "the manifest was parsed before its signature was checked"


def test_file_changed_on_stick_after_verification_has_no_effect(bundle_site, monkeypatch):
    hub = bundle_site.hub
    good = _models(bundle_site)
    evil = hub.build("models", hub.model_payloads(onnx_bytes=samples.tiny_classifier_onnx(seed=5)),
                     sequence=good.manifest["sequence"], manifest_bytes=good.manifest_bytes,
                     signatures=good.signatures, payload_override=None, name="evil.vbundle")
    original = good.path.read_bytes()

    def swap(name):
        if name == "verified":  # the stick's file changes after the staged copy verified
            good.path.write_bytes(evil.path.read_bytes())

    monkeypatch.setattr(exchange, "_checkpoint", swap)
    result = bundle_site.import_(good.path)
    assert result.outcome == "accepted"
    with bundle_site.store.read() as s:
        model = s.scalar(sa.select(ModelRow).where(ModelRow.origin == "hub"))
        ledger = exchange.ledger(bundle_site.store)[0]
    import hashlib

    assert ledger["file_sha256"] == hashlib.sha256(original).hexdigest()
    assert Path(model.path).read_bytes() == good.payload[: good.manifest["entries"][0]["length"]]


# --- roots ---------------------------------------------------------------------------------------


def _truststore(site, envelopes: list[tuple[int, bytes]], **kwargs):
    payloads = [Payload(f"root-v{v}", "root_metadata", f"root-v{v}.json", e) for v, e in envelopes]
    return site.hub.build("truststore", payloads, **kwargs)


def test_root_update_that_skips_a_version_refused(bundle_site):
    hub = bundle_site.hub
    envelope = hub.rotation(version=3)
    bundle_site.refused(_truststore(bundle_site, [(3, envelope)]).path, "root_version")


def test_root_update_without_old_threshold_refused(bundle_site):
    hub = bundle_site.hub
    old_keys = list(hub.root_keys)
    new_keys = [SigningKey.generate() for _ in range(3)]
    envelope = hub.rotation(new_root_keys=new_keys, signers=new_keys + old_keys[:1])
    built = _truststore(bundle_site, [(2, envelope)], signers=old_keys[:2])
    bundle_site.refused(built.path, "root_threshold_old")


def test_root_update_without_new_threshold_refused(bundle_site):
    hub = bundle_site.hub
    old_keys = list(hub.root_keys)
    new_keys = [SigningKey.generate() for _ in range(3)]
    envelope = hub.rotation(new_root_keys=new_keys, signers=old_keys[:2] + new_keys[:1])
    bundle_site.refused(_truststore(bundle_site, [(2, envelope)], signers=old_keys[:2]).path, "root_threshold_new")


def test_truststore_bundle_needs_two_signatures(bundle_site):
    hub = bundle_site.hub
    envelope = hub.rotation()
    bundle_site.refused(_truststore(bundle_site, [(2, envelope)], signers=hub.root_keys[:1]).path, "threshold")


def test_root_chain_rotating_root_keys_accepted(bundle_site):
    """v1 -> v2 (new root keys, signed by old and new) -> v3 (signed by the new keys only)."""
    hub = bundle_site.hub
    old_keys = list(hub.root_keys)
    new_keys = [SigningKey.generate() for _ in range(3)]
    v2 = hub.rotation(new_root_keys=new_keys)
    v3 = hub.rotation()
    built = _truststore(bundle_site, [(2, v2), (3, v3)], signers=old_keys[:2])
    result = bundle_site.import_(built.path)
    assert result.summary["root_version"] == 3
    status = exchange.trust_status(bundle_site.store, now=NOW)
    assert status["root"]["version"] == 3
    # Old root keys no longer sign truststore bundles.
    v4 = hub.rotation()
    bundle_site.refused(_truststore(bundle_site, [(4, v4)], signers=old_keys[:2]).path, "unknown_key")


def test_onnx_model_pointing_at_external_data_refused(bundle_site):
    import onnx
    from onnx.external_data_helper import set_external_data

    model = onnx.load_from_string(samples.tiny_classifier_onnx())
    tensor = model.graph.initializer[0]
    set_external_data(tensor, location="../../../etc/passwd", offset=0, length=48)
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    payloads = bundle_site.hub.model_payloads(onnx_bytes=model.SerializeToString())
    bundle_site.refused(bundle_site.hub.build("models", payloads).path, "content")


def test_kind_outside_channel_refused(bundle_site):
    payloads = bundle_site.hub.template_payload()
    built = bundle_site.hub.build("models", payloads)
    bundle_site.refused(built.path, "entry_kind")


def test_non_admin_cannot_import(bundle_site):
    from vital_desktop.core.errors import PermissionDenied

    built = _models(bundle_site)
    before = bundle_site.snapshot()
    with pytest.raises(PermissionDenied):
        exchange.import_bundle(bundle_site.store, actor=bundle_site.small.user("engineer"), path=built.path, now=NOW)
    assert bundle_site.snapshot() == before


def test_wrong_magic_and_version_refused(bundle_site, tmp_path):
    built = _models(bundle_site)
    data = built.data
    bad_magic = tmp_path / "magic.vbundle"
    bad_magic.write_bytes(b"PK\x03\x04" + data[4:])
    bundle_site.refused(bad_magic, "magic")
    bad_version = tmp_path / "version.vbundle"
    bad_version.write_bytes(data[:8] + struct.pack(">H", 2) + data[10:])
    bundle_site.refused(bad_version, "format_version")


def test_signature_is_bound_to_payload_type(bundle_site):
    """A signature made for a root document cannot be replayed on a manifest."""
    built = _models(bundle_site)
    from vital_desktop.bundles.envelope import PAYLOAD_TYPE_ROOT

    sigs = sign(bundle_site.hub.channel_keys["models"], PAYLOAD_TYPE_ROOT, built.manifest_bytes)
    again = bundle_site.hub.build("models", bundle_site.hub.model_payloads(), manifest_bytes=built.manifest_bytes,
                                  signatures=sigs)
    bundle_site.refused(again.path, "signature")
    assert PAYLOAD_TYPE_MANIFEST != PAYLOAD_TYPE_ROOT


def test_refusal_without_parse_error_leaks_nothing(bundle_site, tmp_path):
    """A zero-byte file is refused cleanly (no traceback, ledger row)."""
    empty = tmp_path / "empty.vbundle"
    empty.write_bytes(b"")
    err = bundle_site.refused(empty, "truncated")
    assert isinstance(err, BundleRefused)

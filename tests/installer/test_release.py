"""A release a site can check: archive, SHA-256, SBOM and Ed25519-signed manifest, verified by the
standard-library-plus-openssl `installer/verify` before anything is unpacked.

The app folder here is a small stand-in (building the real one with PyInstaller takes minutes;
installer/build.sh does that and runs the same verify on it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERIFY = ROOT / "installer" / "verify"
PUBLIC = ROOT / "installer" / "demo-release-key.pub.pem"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="installer/verify needs openssl")


@pytest.fixture
def release(tmp_path: Path) -> Path:
    app = tmp_path / "dist" / "vital"
    (app / "_internal" / "numpy").mkdir(parents=True)
    (app / "vital").write_text("#!/bin/sh\necho frozen vital\n")
    (app / "_internal" / "numpy" / "__init__.py").write_text("x = 1\n")
    (app / "_internal" / "data.bin").write_bytes(bytes(range(256)) * 64)
    out = tmp_path / "release"
    subprocess.run([sys.executable, str(ROOT / "installer" / "package.py"), str(app), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    [archive] = out.glob("*.tar.gz")
    return archive


def _verify(archive: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(VERIFY), str(archive), "--key", str(PUBLIC), *extra],
                          capture_output=True, text=True, check=False)


def _base(archive: Path) -> str:
    return archive.name[: -len(".tar.gz")]


def test_a_good_release_verifies_and_unpacks(release: Path, tmp_path: Path) -> None:
    sbom = json.loads(release.with_name(_base(release) + ".cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    assert any(c["name"].lower() == "numpy" and c["licenses"] for c in sbom["components"])
    done = _verify(release, "--unpack", str(tmp_path / "installed"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["members"] >= 4
    assert (Path(report["unpacked"]) / "vital").read_text().startswith("#!/bin/sh")
    assert release.with_name(release.name + ".sha256").read_text().split()[0] == report["sha256"]


def test_a_truncated_archive_is_refused(release: Path) -> None:
    data = release.read_bytes()
    release.write_bytes(data[: len(data) // 2])
    done = _verify(release)
    assert done.returncode == 1 and "truncated or replaced" in done.stderr


def test_a_changed_archive_of_the_same_size_is_refused(release: Path) -> None:
    data = bytearray(release.read_bytes())
    data[len(data) // 2] ^= 0xFF
    release.write_bytes(bytes(data))
    done = _verify(release)
    assert done.returncode == 1 and "SHA-256 differs" in done.stderr


def test_a_release_resigned_by_another_key_is_refused(release: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    manifest = release.with_name(_base(release) + ".release.json")
    forged = json.loads(manifest.read_bytes())
    forged["archive_sha256"] = "0" * 64
    manifest.write_bytes(json.dumps(forged).encode())
    release.with_name(manifest.name + ".sig").write_bytes(Ed25519PrivateKey.generate().sign(manifest.read_bytes()))
    done = _verify(release)
    assert done.returncode == 1 and "signature does not verify" in done.stderr


def test_an_sbom_that_does_not_match_is_refused(release: Path) -> None:
    sbom_path = release.with_name(_base(release) + ".cdx.json")
    sbom = json.loads(sbom_path.read_text())
    sbom["components"] = []
    sbom_path.write_text(json.dumps(sbom))
    done = _verify(release)
    assert done.returncode == 1 and "SBOM" in done.stderr


def test_another_platform_or_an_older_version_is_refused(release: Path) -> None:
    other = _verify(release, "--platform", "windows-x86_64")
    assert other.returncode == 1 and "not windows-x86_64" in other.stderr
    older = _verify(release, "--installed-version", "99.0.0")
    assert older.returncode == 1 and "not newer" in older.stderr


def test_members_escaping_the_folder_are_refused(release: Path, tmp_path: Path) -> None:
    # a correctly signed archive that holds a link out of the app folder is refused all the same
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    base = _base(release)
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo(f"{base}/passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tar.addfile(info)
    shutil.copy(evil, release)
    manifest = release.with_name(base + ".release.json")
    signed = json.loads(manifest.read_bytes())
    import hashlib

    signed["archive_bytes"] = release.stat().st_size
    signed["archive_sha256"] = hashlib.sha256(release.read_bytes()).hexdigest()
    sbom_path = release.with_name(base + ".cdx.json")
    sbom = json.loads(sbom_path.read_text())
    sbom["metadata"]["component"]["hashes"] = [{"alg": "SHA-256", "content": signed["archive_sha256"]}]
    sbom_path.write_text(json.dumps(sbom))
    signed["sbom_sha256"] = hashlib.sha256(sbom_path.read_bytes()).hexdigest()
    manifest.write_bytes(json.dumps(signed).encode())
    key = load_pem_private_key((ROOT / "installer" / "demo-release-key.pem").read_bytes(), password=None)
    release.with_name(manifest.name + ".sig").write_bytes(key.sign(manifest.read_bytes()))  # type: ignore[call-arg]
    release.with_name(release.name + ".sha256").unlink()
    done = _verify(release)
    assert done.returncode == 1 and "links outside the app folder" in done.stderr


def test_the_model_beside_the_archive_is_checked_by_its_signed_hash(tmp_path: Path) -> None:
    app = tmp_path / "dist" / "vital"
    app.mkdir(parents=True)
    (app / "vital").write_text("#!/bin/sh\necho frozen vital\n")
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF" + bytes(1000))
    out = tmp_path / "release"
    subprocess.run([sys.executable, str(ROOT / "installer" / "package.py"), str(app), "--out", str(out),
                    "--model", str(model)], check=True, capture_output=True, text=True)
    [archive] = out.glob("*.tar.gz")
    done = _verify(archive)
    assert done.returncode == 0, done.stderr
    assert [Path(m).name for m in json.loads(done.stdout)["models"]] == ["tiny.gguf"]
    (out / "tiny.gguf").write_bytes(b"GGUF" + bytes(999) + b"x")
    changed = _verify(archive)
    assert changed.returncode == 1 and "tiny.gguf differs from the signed one" in changed.stderr
    (out / "tiny.gguf").unlink()
    missing = _verify(archive)
    assert missing.returncode == 1 and "missing the model tiny.gguf" in missing.stderr

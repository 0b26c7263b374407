"""Writing bundles: hash payloads, build and sign the manifest, write one file atomically.

Used by the hub tools (update bundles) and the site (exports). The file is written to a
temporary name in the target folder, flushed to disk, then renamed over the final name, so a
stick pulled out half-way never holds a half-written bundle under the real name.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vital_desktop.bundles import canonical
from vital_desktop.bundles.envelope import PAYLOAD_TYPE_MANIFEST, sign
from vital_desktop.bundles.keys import SigningKey
from vital_desktop.bundles.layout import encode_prefix
from vital_desktop.bundles.limits import CHUNK_BYTES
from vital_desktop.bundles.seal import SCHEME, Binding, Sealer

PRODUCT = "vital-desktop"


@dataclass
class PayloadSource:
    """One payload to put in a bundle: a file on disk or bytes in memory."""

    id: str
    kind: str
    name: str
    path: Path | None = None
    data: bytes | None = None
    schema_version: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    def open(self) -> BinaryIO:
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.data or b"")


@dataclass(frozen=True)
class WrittenBundle:
    path: Path
    bundle_id: str
    manifest: dict[str, Any]
    manifest_sha256: str
    file_sha256: str
    size: int


def _measure(source: PayloadSource) -> tuple[int, str]:
    digest = hashlib.sha256()
    length = 0
    with source.open() as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            length += len(chunk)
    return length, digest.hexdigest()


def manifest_document(*, channel: str, issuer: str, sequence: int, issued_at: int, expires: int,
                      sites: list[str], entries: list[dict[str, Any]], epoch: int = 0,
                      direction: str | None = None, bundle_id: str | None = None, app_min: str = "0.1.0",
                      app_below: str = "1.0.0", encryption: dict[str, Any] | None = None,
                      notes: str = "") -> dict[str, Any]:
    """The manifest as a dict (entries already carry offset, length and sha256)."""
    document: dict[str, Any] = {
        "format": "vital-bundle", "format_version": 1, "bundle_id": bundle_id or str(uuid.uuid4()),
        "direction": direction or ("site_to_hub" if channel == "exports" else "hub_to_site"),
        "issuer": issuer, "channel": channel, "epoch": epoch, "sequence": sequence,
        "issued_at": issued_at, "expires": expires,
        "targets": {"sites": sites, "product": PRODUCT, "app_version": {"min": app_min, "below": app_below}},
        "entries": entries,
    }
    if encryption is not None:
        document["encryption"] = encryption
    if notes:
        document["notes"] = notes
    return document


def describe_entries(sources: list[PayloadSource], measured: list[tuple[int, str]]) -> list[dict[str, Any]]:
    entries = []
    offset = 0
    for source, (length, sha) in zip(sources, measured, strict=False):
        entries.append({"id": source.id, "kind": source.kind, "name": source.name, "offset": offset, "length": length,
                        "sha256": sha, "schema_version": source.schema_version, "meta": dict(source.meta)})
        offset += length
    return entries


def write_file_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """temp file in the same folder + fsync + os.replace (+ fsync of the folder where possible)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_bundle(target: Path, sources: list[PayloadSource], keys: list[SigningKey], **manifest_fields: Any) -> WrittenBundle:
    """Build, sign and write a bundle holding `sources` in order (see `manifest_document` for fields)."""
    measured = [_measure(s) for s in sources]
    document = manifest_document(entries=describe_entries(sources, measured), **manifest_fields)
    manifest_bytes = canonical.dumps(document)
    prefix = encode_prefix(manifest_bytes, sign(keys, PAYLOAD_TYPE_MANIFEST, manifest_bytes))
    file_digest = hashlib.sha256()

    def write(handle: BinaryIO) -> None:
        handle.write(prefix)
        file_digest.update(prefix)
        for source in sources:
            with source.open() as payload:
                while chunk := payload.read(CHUNK_BYTES):
                    handle.write(chunk)
                    file_digest.update(chunk)

    write_file_atomically(target, write)
    return WrittenBundle(target, document["bundle_id"], document, hashlib.sha256(manifest_bytes).hexdigest(),
                         file_digest.hexdigest(), target.stat().st_size)


def write_sealed_bundle(target: Path, sources: list[PayloadSource], site_key: SigningKey, *, site_id: str,
                        sequence: int, hub_key_id: str, hub_public: bytes, issued_at: int, expires: int,
                        work_dir: Path, bundle_id: str | None = None) -> WrittenBundle:
    """A site export: each payload encrypted to the hub (see `seal`), the manifest signed by the site key."""
    bundle_id = bundle_id or str(uuid.uuid4())
    sealer = Sealer(hub_public, Binding(site_id, sequence, bundle_id))
    sealed_sources = []
    for index, source in enumerate(sources):
        length, _ = _measure(source)
        sealed_path = work_dir / f"sealed-{index}"
        with source.open() as plain, open(sealed_path, "wb") as out:
            sealer.seal_stream(index, source.id, plain, length, out.write)
        sealed_sources.append(PayloadSource(source.id, source.kind, source.name, path=sealed_path,
                                            schema_version=source.schema_version, meta=source.meta))
    encryption = {"scheme": SCHEME, "recipient_key_id": hub_key_id,
                  "ephemeral_public_key": sealer.ephemeral_public.hex(), "chunk_bytes": sealer.chunk_bytes}
    return write_bundle(target, sealed_sources, [site_key], channel="exports", issuer=site_id, sequence=sequence,
                        issued_at=issued_at, expires=expires, sites=["hub"], bundle_id=bundle_id,
                        encryption=encryption)

"""The byte layout of a bundle file (see `bundles/FORMAT.md`).

    offset 0   8 bytes   magic  b"\\x89VITAL\\r\\n"
           8   u16 BE    format version (1)
          10   u16 BE    flags (must be 0)
          12   u32 BE    manifest length M (<= MAX_MANIFEST_BYTES)
          16   M bytes   manifest: canonical JSON, the signed bytes
       16+M    u16 BE    signature count S (1..MAX_SIGNATURES)
       18+M    S * 96    signature records: 32-byte key id, 64-byte Ed25519 signature
          P    ...       payload area: entries back to back, at the offsets the manifest gives

Nothing in the file but the manifest names or sizes a payload, and the file must end exactly
where the last entry ends: there are no unsigned bytes anywhere.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vital_desktop.bundles.envelope import SIGNATURE_RECORD_BYTES, Signature, encode_signature_block
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.limits import MAX_MANIFEST_BYTES, MAX_SIGNATURES

MAGIC = b"\x89VITAL\r\n"
FORMAT_VERSION = 1
HEADER = struct.Struct(">8sHHI")
HEADER_BYTES = HEADER.size  # 16
COUNT = struct.Struct(">H")


@dataclass(frozen=True)
class Header:
    manifest_length: int

    @property
    def manifest_offset(self) -> int:
        return HEADER_BYTES

    @property
    def signature_count_offset(self) -> int:
        return HEADER_BYTES + self.manifest_length


def parse_header(data: bytes) -> Header:
    """Check magic, version and flags and cap the manifest length (16 bytes in, nothing trusted)."""
    if len(data) < HEADER_BYTES:
        raise BundleRefused("truncated", "file is shorter than a bundle header")
    magic, version, flags, manifest_length = HEADER.unpack(data[:HEADER_BYTES])
    if magic != MAGIC:
        raise BundleRefused("magic", "not a VITAL bundle (wrong magic bytes)")
    if version != FORMAT_VERSION:
        raise BundleRefused("format_version", f"bundle format version {version} is not supported (this app reads 1)")
    if flags != 0:
        raise BundleRefused("format_flags", f"unknown format flags {flags:#x}")
    if manifest_length == 0 or manifest_length > MAX_MANIFEST_BYTES:
        raise BundleRefused("manifest_size", f"manifest length {manifest_length} is outside 1..{MAX_MANIFEST_BYTES}")
    return Header(manifest_length)


def parse_signature_count(data: bytes) -> int:
    """The number of signature records (capped; zero is refused: an unsigned bundle is never read)."""
    if len(data) != COUNT.size:
        raise BundleRefused("truncated", "file ends before the signature block")
    count: int = COUNT.unpack(data)[0]
    if count == 0:
        raise BundleRefused("no_signatures", "the bundle carries no signatures")
    if count > MAX_SIGNATURES:
        raise BundleRefused("signature_count", f"{count} signatures is more than the cap of {MAX_SIGNATURES}")
    return count


def payload_offset(manifest_length: int, signature_count: int) -> int:
    return HEADER_BYTES + manifest_length + COUNT.size + signature_count * SIGNATURE_RECORD_BYTES


def encode_prefix(manifest_bytes: bytes, signatures: list[Signature]) -> bytes:
    """Header, manifest and signature block: everything before the payload area."""
    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise BundleRefused("manifest_size", "manifest too large")
    return HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(manifest_bytes)) + manifest_bytes + encode_signature_block(signatures)

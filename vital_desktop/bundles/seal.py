"""Encrypting a site export to the hub: X25519 + HKDF-SHA256 + AES-256-GCM, in chunks.

A fresh ephemeral X25519 key per export; the shared secret goes through HKDF with the site
id, the sequence number and the bundle id in `info`, so a key derived for one export opens
nothing else. Each payload is cut into chunks of `chunk_bytes`; chunk i of entry j uses the
nonce (j, i) and carries the same binding plus the entry id, the chunk index and a last-chunk
flag as associated data, so chunks cannot be reordered, swapped between entries or bundles, or
cut off at a chunk boundary. Memory stays at one chunk whatever the payload size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vital_desktop.bundles import canonical
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import EncryptionKey, raw_public

SCHEME = "x25519-hkdf-sha256-aes256gcm-chunked-v1"
DEFAULT_CHUNK_BYTES = 1024 * 1024
TAG_BYTES = 16


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Binding:
    """What an export's encryption is bound to."""

    site_id: str
    sequence: int
    bundle_id: str

    def info(self) -> bytes:
        return b"vital-export-v1|" + canonical.dumps(
            {"bundle_id": self.bundle_id, "sequence": self.sequence, "site_id": self.site_id}
        )

    def aad(self, entry_id: str, chunk: int, last: bool) -> bytes:
        return canonical.dumps({"bundle_id": self.bundle_id, "chunk": chunk, "entry": entry_id, "last": last,
                                "sequence": self.sequence, "site_id": self.site_id})


def _derive(shared: bytes, ephemeral_public: bytes, recipient_public: bytes, binding: Binding) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + recipient_public,
                info=binding.info()).derive(shared)


def _nonce(entry_index: int, chunk: int) -> bytes:
    return entry_index.to_bytes(4, "big") + chunk.to_bytes(8, "big")


def sealed_length(plain_length: int, chunk_bytes: int) -> int:
    chunks = max(1, -(-plain_length // chunk_bytes))
    return plain_length + chunks * TAG_BYTES


@dataclass
class Sealer:
    """Sender side: one per export (fresh ephemeral key)."""

    recipient_public: bytes
    binding: Binding
    chunk_bytes: int = DEFAULT_CHUNK_BYTES

    def __post_init__(self) -> None:
        ephemeral = X25519PrivateKey.generate()
        self.ephemeral_public = raw_public(ephemeral)
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.recipient_public))
        self._aead = AESGCM(_derive(shared, self.ephemeral_public, self.recipient_public, self.binding))

    def seal_stream(self, entry_index: int, entry_id: str, source: Readable, plain_length: int,
                    write: Callable[[bytes], object]) -> None:
        chunks = max(1, -(-plain_length // self.chunk_bytes))
        for chunk in range(chunks):
            data = source.read(self.chunk_bytes)
            last = chunk == chunks - 1
            write(self._aead.encrypt(_nonce(entry_index, chunk), data, self.binding.aad(entry_id, chunk, last)))


@dataclass
class Opener:
    """Recipient side (the hub), built from the manifest's encryption block after the signature verified."""

    recipient: EncryptionKey
    ephemeral_public: bytes
    binding: Binding
    chunk_bytes: int

    def __post_init__(self) -> None:
        shared = self.recipient.private.exchange(X25519PublicKey.from_public_bytes(self.ephemeral_public))
        self._aead = AESGCM(_derive(shared, self.ephemeral_public, self.recipient.public_raw, self.binding))

    def open_stream(self, entry_index: int, entry_id: str, source: Readable, sealed_len: int,
                    write: Callable[[bytes], object]) -> str:
        """Decrypt one entry; returns the SHA-256 of the plaintext. Any tampering raises `BundleRefused`."""
        digest = hashlib.sha256()
        remaining = sealed_len
        chunk = 0
        step = self.chunk_bytes + TAG_BYTES
        while True:
            size = min(step, remaining)
            data = source.read(size)
            if len(data) != size or size < TAG_BYTES:
                raise BundleRefused("truncated", f"encrypted entry {entry_id!r} is truncated")
            remaining -= size
            last = remaining == 0
            try:
                plain = self._aead.decrypt(_nonce(entry_index, chunk), data, self.binding.aad(entry_id, chunk, last))
            except InvalidTag as exc:
                raise BundleRefused(
                    "decrypt", f"entry {entry_id!r} does not decrypt for this site, sequence and bundle id"
                ) from exc
            digest.update(plain)
            write(plain)
            chunk += 1
            if last:
                return digest.hexdigest()

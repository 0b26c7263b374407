"""Ed25519 signing keys and X25519 encryption keys: ids, fingerprints, (de)serialisation.

A key id is the SHA-256 of the raw 32-byte public key, in hex: it names a key without
trusting anything the key's holder wrote. Everything here works on bytes (no file IO).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from vital_desktop.bundles.errors import BundleRefused

RAW_PUBLIC_KEY_BYTES = 32


def key_id(public_raw: bytes) -> str:
    """The id of a raw public key (hex SHA-256); the same bytes always give the same id."""
    return hashlib.sha256(public_raw).hexdigest()


def fingerprint(public_raw: bytes) -> str:
    """A short form of the key id for reading aloud at setup (out-of-band confirmation)."""
    digest = key_id(public_raw)[:32].upper()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def raw_public(key: Ed25519PrivateKey | Ed25519PublicKey | X25519PrivateKey | X25519PublicKey) -> bytes:
    """The raw 32 public-key bytes of any of our key types."""
    public = key.public_key() if isinstance(key, (Ed25519PrivateKey, X25519PrivateKey)) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_from_hex(text: str) -> bytes:
    """Decode a hex public key and check its length (refuses anything that is not 32 bytes)."""
    try:
        raw = bytes.fromhex(text)
    except (ValueError, TypeError) as exc:
        raise BundleRefused("key", "public key is not hex") from exc
    if len(raw) != RAW_PUBLIC_KEY_BYTES:
        raise BundleRefused("key", f"public key has {len(raw)} bytes, expected {RAW_PUBLIC_KEY_BYTES}")
    return raw


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key with its id (the hub's root/channel keys, a site's key)."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_raw(self) -> bytes:
        return raw_public(self.private)

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def to_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise BundleRefused("key", "the key file does not hold an Ed25519 private key")
        return cls(key)


@dataclass(frozen=True)
class EncryptionKey:
    """An X25519 private key (the hub's key that site exports are encrypted to)."""

    private: X25519PrivateKey

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(X25519PrivateKey.generate())

    @property
    def public_raw(self) -> bytes:
        return raw_public(self.private)

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    def to_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def from_pem(cls, data: bytes) -> EncryptionKey:
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, X25519PrivateKey):
            raise BundleRefused("key", "the key file does not hold an X25519 private key")
        return cls(key)


def verify_ed25519(public_raw: bytes, signature: bytes, data: bytes) -> bool:
    """True if `signature` is a valid Ed25519 signature of `data` by `public_raw`; never raises."""
    from cryptography.exceptions import InvalidSignature

    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True

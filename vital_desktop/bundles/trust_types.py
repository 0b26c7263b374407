"""The plain records that the trust decisions take and return (no decision is made here).

`bundles/trust.py` makes every trust decision; this module only holds the shapes it works on:
verified roots and their keys, what the site or hub knows when deciding (`SiteContext`,
`HubContext`, `KeyRecord`, `InstalledApp`), what a caller observed (`PackageFile`,
`BackboneTrial`) and the outcome (`Check`, `Decision`). Import them from `bundles.trust`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vital_desktop.bundles.errors import BundleRefused

PRODUCT = "vital-desktop"


@dataclass(frozen=True)
class SigningKeyInfo:
    key_id: str
    public: bytes
    channels: frozenset[str]
    expires: int | None  # None for root keys (they change only with a new root version)
    name: str = ""
    role: str = "channel"


@dataclass(frozen=True)
class Root:
    """A verified root document."""

    version: int
    name: str
    issued_at: int
    expires: int
    root_keys: Mapping[str, bytes]
    root_threshold: int
    signing_keys: Mapping[str, SigningKeyInfo]
    thresholds: Mapping[str, int]
    revoked: frozenset[str]
    hub_encryption_key_id: str
    hub_encryption_public: bytes
    envelope: bytes  # the exact bytes that verified, for storing

    def key(self, key_id: str) -> SigningKeyInfo | None:
        """The key as it may sign bundles: signing keys by their scope, root keys for truststore."""
        if key_id in self.revoked:
            return None
        if key_id in self.signing_keys:
            return self.signing_keys[key_id]
        if key_id in self.root_keys:
            return SigningKeyInfo(key_id, self.root_keys[key_id], frozenset({"truststore"}), None, "root", "root")
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version, "name": self.name, "issued_at": self.issued_at, "expires": self.expires,
            "root_threshold": self.root_threshold, "root_keys": sorted(self.root_keys),
            "thresholds": dict(self.thresholds), "revoked": sorted(self.revoked),
            "signing_keys": {k: {"channels": sorted(v.channels), "expires": v.expires, "name": v.name}
                             for k, v in sorted(self.signing_keys.items())},
            "hub_encryption_key_id": self.hub_encryption_key_id,
        }


@dataclass(frozen=True)
class ChannelState:
    epoch: int
    sequence: int
    issued_at: int | None
    manifest_sha256: str | None


@dataclass(frozen=True)
class SiteContext:
    """What the site knows when deciding (read from the store by the caller)."""

    site_id: str
    app_version: str
    now: int
    channel: ChannelState | None
    newest_issued_at: int | None  # across every channel
    accepted_same_version_sha256: str | None  # manifest sha of an accepted bundle with this channel/epoch/sequence
    accepted_same_id_sha256: str | None  # manifest sha of an accepted bundle with this bundle id
    product: str = PRODUCT


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    code: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Decision:
    outcome: str  # "accept" | "already_imported" | "refuse"
    checks: tuple[Check, ...]
    signers: frozenset[str]
    alarm: bool = False

    @property
    def failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)

    def raise_if_refused(self) -> None:
        failure = self.failure
        if self.outcome == "refuse" and failure is not None:
            raise BundleRefused(failure.code, failure.message, details={"alarm": self.alarm})


@dataclass(frozen=True)
class InstalledApp:
    """What is installed here (read by the caller from the install folder)."""

    version: str
    platform: str


@dataclass(frozen=True)
class HubContext:
    now: int
    hub_encryption_key_id: str
    last_sequence: Mapping[str, int]  # site id -> highest sequence already ingested


@dataclass(frozen=True)
class KeyRecord:
    """A key as the site's key table records it (the caller reads the table)."""

    key_id: str
    public: bytes
    role: str
    channels: frozenset[str]
    expires: int | None
    revoked: bool


@dataclass(frozen=True)
class PackageFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DeploymentManifest:
    model: Mapping[str, Any]
    files: tuple[PackageFile, ...]
    document: Mapping[str, Any]


@dataclass(frozen=True)
class BackboneTrial:
    """What the caller observed when it ran a backbone payload (no judgement: `decide_backbone` judges)."""

    entry: str
    sandbox_error: str | None  # the sandboxed trial run's failure, None when it ran
    problem: str | None  # unreadable or missing preprocessing metadata, a second input, a run failure
    input_shape: tuple[int | str | None, ...]  # the graph input's declared dims
    channels: int  # what the metadata's colour mode needs (1 or 3)
    output_shape: tuple[int, ...] | None  # the output for two blank images
    output_finite: bool = True

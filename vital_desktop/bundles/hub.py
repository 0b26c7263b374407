"""The hub's side, so tests, demos and the `vital-hub` command can play the hub.

A hub folder holds the root keys, the channel signing keys, the X25519 key that site exports
are encrypted to, the current root document, the next sequence number per channel, the
public keys of registered sites and the last export sequence ingested from each site::

    hub/keys/*.pem       private keys (mode 0600)
    hub/root.json        current root (DSSE envelope); hub/roots/root-vN.json every version
    hub/sites/ID.pub     registered site public keys (hex)
    hub/state.json       {"sequences": {...}, "epoch": 0, "ingested": {site: sequence}}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vital_desktop.bundles import canonical
from vital_desktop.bundles.envelope import PAYLOAD_TYPE_ROOT, encode_json_envelope, sign
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import EncryptionKey, SigningKey, public_from_hex
from vital_desktop.bundles.payloads import check_audit_head as check_audit_head_payload
from vital_desktop.bundles.pipeline import open_export
from vital_desktop.bundles.reader import BoundedReader, open_entry
from vital_desktop.bundles.seal import Binding, Opener
from vital_desktop.bundles.trust import Check, HubContext, Root, check_audit_head, decide_export, load_trusted_root
from vital_desktop.bundles.writer import PayloadSource, WrittenBundle, write_bundle, write_file_atomically

UPDATE_CHANNELS = ("models", "templates", "labels", "config", "taxonomy", "app")
DAY = 86400
YEAR = 365 * DAY


def root_document(*, version: int, name: str, root_keys: list[SigningKey], root_threshold: int,
                  channel_keys: dict[str, list[SigningKey]], encryption_public: bytes, issued_at: int,
                  expires: int, key_expires: int, revoked: list[str] | None = None,
                  thresholds: dict[str, int] | None = None) -> dict[str, Any]:
    """A root payload: root keys, channel keys scoped and dated, thresholds, revocations, hub key."""
    from vital_desktop.bundles.keys import key_id

    signing: dict[str, Any] = {}
    for channel, keys in channel_keys.items():
        for index, key in enumerate(keys):
            item = signing.setdefault(key.key_id, {"public": key.public_raw.hex(), "channels": [], "expires": key_expires,
                                                   "name": f"{channel}-{index + 1}"})
            item["channels"] = sorted(set(item["channels"]) | {channel})
    return {
        "type": "vital-root", "spec_version": 1, "name": name, "version": version,
        "issued_at": issued_at, "expires": expires,
        "root_keys": {k.key_id: {"public": k.public_raw.hex(), "name": f"root-{i + 1}"} for i, k in enumerate(root_keys)},
        "root_threshold": root_threshold, "signing_keys": signing,
        "thresholds": thresholds or {"models": 1, "templates": 1, "labels": 1, "truststore": 2, "config": 2,
                                     "taxonomy": 1, **({"app": 2} if "app" in channel_keys else {})},
        "revoked": sorted(revoked or []),
        "hub_encryption_key": {"key_id": key_id(encryption_public), "public": encryption_public.hex()},
    }


def sign_root(document: dict[str, Any], signers: list[SigningKey]) -> bytes:
    """The DSSE JSON envelope of a root document signed by `signers`."""
    body = canonical.dumps(document)
    return encode_json_envelope(PAYLOAD_TYPE_ROOT, body, sign(signers, PAYLOAD_TYPE_ROOT, body))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


class _HashingReader:
    """Hash the ciphertext as it is decrypted, so the signed SHA-256 is checked in the same pass."""

    def __init__(self, source: BoundedReader) -> None:
        self.source = source
        self.digest = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        return data


def issuer_name(name: str) -> str:
    """A manifest-safe issuer id from a hub's display name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:64]
    return cleaned or "hub"


@dataclass(frozen=True)
class IngestResult:
    site_id: str
    sequence: int
    bundle_id: str
    files: list[str]
    checks: list[Check]

    def to_dict(self) -> dict[str, Any]:
        return {"site_id": self.site_id, "sequence": self.sequence, "bundle_id": self.bundle_id, "files": self.files,
                "checks": [c.to_dict() for c in self.checks]}


class HubDir:
    """A hub's keys and state in one folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # --- keys and roots -------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, *, name: str, root_key_count: int = 3, root_threshold: int = 2,
               now: int | None = None, root_lifetime: int = 10 * YEAR, key_lifetime: int = 2 * YEAR) -> HubDir:
        """New hub: root keys, one key per update channel (two for config), encryption key, root v1."""
        hub = cls(path)
        if (path / "root.json").exists():
            raise BundleRefused("hub_exists", f"{path} already holds a hub")
        now = int(time.time()) if now is None else now
        root_keys = [SigningKey.generate() for _ in range(root_key_count)]
        for index, key in enumerate(root_keys):
            _write_private(path / "keys" / f"root-{index + 1}.pem", key.to_pem())
        channel_keys: dict[str, list[SigningKey]] = {}
        for channel in UPDATE_CHANNELS:
            count = 2 if channel in ("config", "app") else 1  # two signatures for settings and app updates
            channel_keys[channel] = [SigningKey.generate() for _ in range(count)]
            for index, key in enumerate(channel_keys[channel]):
                _write_private(path / "keys" / f"{channel}-{index + 1}.pem", key.to_pem())
        encryption = EncryptionKey.generate()
        _write_private(path / "keys" / "hub-encryption.pem", encryption.to_pem())
        document = root_document(version=1, name=name, root_keys=root_keys, root_threshold=root_threshold,
                                 channel_keys=channel_keys, encryption_public=encryption.public_raw, issued_at=now,
                                 expires=now + root_lifetime, key_expires=now + key_lifetime)
        hub._save_root(sign_root(document, root_keys), 1)
        hub._save_state({"epoch": 0, "sequences": {}, "ingested": {}})
        return hub

    def _save_root(self, envelope: bytes, version: int) -> None:
        (self.path / "roots").mkdir(parents=True, exist_ok=True)
        write_file_atomically(self.path / "roots" / f"root-v{version}.json", lambda h: h.write(envelope))
        write_file_atomically(self.path / "root.json", lambda h: h.write(envelope))

    def root_envelope(self) -> bytes:
        return (self.path / "root.json").read_bytes()

    def root(self, now: int | None = None) -> Root:
        return load_trusted_root(self.root_envelope(), int(time.time()) if now is None else now)

    def root_version_envelope(self, version: int) -> bytes:
        return (self.path / "roots" / f"root-v{version}.json").read_bytes()

    def key(self, name: str) -> SigningKey:
        return SigningKey.from_pem((self.path / "keys" / f"{name}.pem").read_bytes())

    def root_keys(self) -> list[SigningKey]:
        return [SigningKey.from_pem(p.read_bytes()) for p in sorted((self.path / "keys").glob("root-*.pem"))]

    def channel_keys(self, channel: str) -> list[SigningKey]:
        """The keys in the current root that may sign `channel` and whose private half is here."""
        root = self.root()
        keys = []
        for path in sorted((self.path / "keys").glob("*.pem")):
            if path.name.startswith(("root-", "hub-encryption")):
                continue
            key = SigningKey.from_pem(path.read_bytes())
            info = root.signing_keys.get(key.key_id)
            if info is not None and channel in info.channels:
                keys.append(key)
        if channel == "truststore":
            keys = self.root_keys()[: max(root.thresholds["truststore"], root.root_threshold)]
        return keys

    def encryption_key(self) -> EncryptionKey:
        return EncryptionKey.from_pem((self.path / "keys" / "hub-encryption.pem").read_bytes())

    # --- state -------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / "state.json").read_text("utf-8"))
        return data

    def _save_state(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, indent=2, sort_keys=True).encode("utf-8")
        write_file_atomically(self.path / "state.json", lambda h: h.write(text))

    def next_sequence(self, channel: str) -> int:
        return int(self.state()["sequences"].get(channel, 0)) + 1

    # --- building update bundles ---------------------------------------------------------------

    def build(self, target: Path, *, channel: str, sources: list[PayloadSource], sites: list[str],
              now: int | None = None, lifetime: int = 90 * DAY, sequence: int | None = None,
              signers: list[SigningKey] | None = None, notes: str = "") -> WrittenBundle:
        """Sign and write an update bundle for `sites`; the channel's sequence advances by one."""
        now = int(time.time()) if now is None else now
        state = self.state()
        sequence = self.next_sequence(channel) if sequence is None else sequence
        keys = signers if signers is not None else self.channel_keys(channel)
        if not keys:
            raise BundleRefused("key_scope", f"this hub holds no key for the {channel} channel")
        written = write_bundle(target, sources, keys, channel=channel, issuer=issuer_name(self.root().name),
                               sequence=sequence, epoch=int(state.get("epoch", 0)), issued_at=now,
                               expires=now + lifetime, sites=sites, notes=notes)
        state["sequences"][channel] = max(sequence, int(state["sequences"].get(channel, 0)))
        self._save_state(state)
        return written

    def rotate(self, target: Path, *, sites: list[str], revoke: list[str] | None = None,
               new_channel_keys: dict[str, int] | None = None, now: int | None = None,
               key_lifetime: int = 2 * YEAR, root_lifetime: int = 10 * YEAR) -> WrittenBundle:
        """New root version (new channel keys, revocations), shipped as a truststore bundle."""
        now = int(time.time()) if now is None else now
        current = self.root(now)
        revoke = list(revoke or [])
        channel_keys: dict[str, list[SigningKey]] = {}
        for path in sorted((self.path / "keys").glob("*.pem")):
            if path.name.startswith(("root-", "hub-encryption")):
                continue
            key = SigningKey.from_pem(path.read_bytes())
            info = current.signing_keys.get(key.key_id)
            if info is None or key.key_id in revoke:
                continue
            for channel in info.channels:
                channel_keys.setdefault(channel, []).append(key)
        for channel, count in (new_channel_keys or {}).items():
            for _ in range(count):
                key = SigningKey.generate()
                index = len(list((self.path / "keys").glob(f"{channel}-*.pem"))) + 1
                _write_private(self.path / "keys" / f"{channel}-{index}.pem", key.to_pem())
                channel_keys.setdefault(channel, []).append(key)
        for key_id_value in revoke:
            for path in (self.path / "keys").glob("*.pem"):
                if (not path.name.startswith(("root-", "hub-encryption"))
                        and SigningKey.from_pem(path.read_bytes()).key_id == key_id_value):
                    path.rename(path.with_suffix(".revoked"))
        root_keys = self.root_keys()
        document = root_document(
            version=current.version + 1, name=current.name, root_keys=root_keys, root_threshold=current.root_threshold,
            channel_keys=channel_keys, encryption_public=current.hub_encryption_public, issued_at=now,
            expires=now + root_lifetime, key_expires=now + key_lifetime,
            revoked=sorted(set(current.revoked) | set(revoke)), thresholds=dict(current.thresholds),
        )
        envelope = sign_root(document, root_keys)
        truststore_keys = root_keys[: current.thresholds["truststore"]]
        self._save_root(envelope, current.version + 1)
        source = PayloadSource(f"root-v{current.version + 1}", "root_metadata",
                               f"root-v{current.version + 1}.json", data=envelope)
        return self.build(target, channel="truststore", sources=[source], sites=sites, now=now,
                          signers=truststore_keys, notes=f"root version {current.version + 1}")

    # --- site exports ---------------------------------------------------------------------------

    def register_site(self, site_id: str, public_hex: str) -> None:
        public_from_hex(public_hex)
        (self.path / "sites").mkdir(parents=True, exist_ok=True)
        (self.path / "sites" / f"{site_id}.pub").write_text(public_hex + "\n", "utf-8")

    def site_keys(self) -> dict[str, bytes]:
        folder = self.path / "sites"
        if not folder.is_dir():
            return {}
        return {p.stem: public_from_hex(p.read_text("utf-8").strip()) for p in folder.glob("*.pub")}

    def ingest(self, path: Path, out_dir: Path, *, now: int | None = None) -> IngestResult:
        """Verify, decrypt and dedupe (site + sequence) one site export into Parquet files."""
        now = int(time.time()) if now is None else now
        raw, manifest, signer_sites = open_export(path, self.site_keys())
        state = self.state()
        root = self.root(now)
        decision = decide_export(manifest, signer_sites, HubContext(now, root.hub_encryption_key_id,
                                                                    {k: int(v) for k, v in state["ingested"].items()}))
        decision.raise_if_refused()
        encryption = manifest.encryption or {}
        opener = Opener(self.encryption_key(), public_from_hex(encryption["ephemeral_public_key"]),
                        Binding(manifest.issuer, manifest.sequence, manifest.bundle_id), int(encryption["chunk_bytes"]))
        folder = out_dir / manifest.issuer / f"{manifest.sequence:06d}"
        staging = out_dir / f".ingest-{uuid.uuid4()}"
        staging.mkdir(parents=True)
        files = []
        checks = list(decision.checks)
        head: dict[str, Any] | None = None
        try:
            for index, entry in enumerate(manifest.entries):
                suffix = ".json" if entry.kind == "audit_head" else ".parquet"
                target = staging / f"{entry.kind}{suffix}"
                with open_entry(path, raw.payload_offset, entry) as source, open(target, "wb") as out:
                    tee = _HashingReader(source)
                    opener.open_stream(index, entry.id, tee, entry.length, out.write)
                if tee.digest.hexdigest() != entry.sha256:
                    raise BundleRefused("payload_hash", f"entry {entry.id!r} does not match its signed SHA-256")
                if entry.kind == "audit_head":
                    head = check_audit_head_payload(entry, target).json
                files.append(target.name)
            if head is None:
                raise BundleRefused("audit_head", "the export carries no signed audit head")
            head_check = check_audit_head(head, self.site_keys()[manifest.issuer],
                                          state.get("audit_heads", {}).get(manifest.issuer))
            checks.append(head_check)
            if not head_check.ok:
                raise BundleRefused(head_check.code, head_check.message)
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        state["ingested"][manifest.issuer] = manifest.sequence
        state.setdefault("audit_heads", {})[manifest.issuer] = {"seq": head["seq"], "hash": head["hash"]}
        self._save_state(state)
        return IngestResult(manifest.issuer, manifest.sequence, manifest.bundle_id,
                            [str(folder / f) for f in files], checks)

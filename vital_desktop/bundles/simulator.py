"""An in-memory hub for attack tests (python-tuf's RepositorySimulator idea).

It holds real keys and builds real bundles, and every step can be bent: sign with any keys,
edit the manifest after hashing, replace the manifest bytes or the signatures outright,
append, cut or swap bytes. Tests name a threat, build its bundle here, and assert refusal.
"""

from __future__ import annotations

import copy
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vital_desktop.bundles import canonical, samples
from vital_desktop.bundles.envelope import PAYLOAD_TYPE_MANIFEST, Signature, sign
from vital_desktop.bundles.hub import root_document, sign_root
from vital_desktop.bundles.keys import EncryptionKey, SigningKey
from vital_desktop.bundles.layout import encode_prefix
from vital_desktop.bundles.writer import PayloadSource, describe_entries, manifest_document

NOW = 1_800_000_000  # 2027-01-15, a fixed "now" for every test
DAY = 86400


@dataclass
class Payload:
    id: str
    kind: str
    name: str
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    schema_version: int = 1


@dataclass
class Built:
    path: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    signatures: list[Signature]
    payload: bytes

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class HubKeys:
    """The simulated hub's starting keys (generate once, share between tests: roots stay identical)."""

    root_keys: tuple[SigningKey, ...]
    channel_keys: dict[str, tuple[SigningKey, ...]]
    encryption: EncryptionKey

    @classmethod
    def generate(cls) -> HubKeys:
        return cls(
            tuple(SigningKey.generate() for _ in range(3)),
            {"models": (SigningKey.generate(),), "templates": (SigningKey.generate(),),
             "labels": (SigningKey.generate(),), "config": (SigningKey.generate(), SigningKey.generate()),
             "taxonomy": (SigningKey.generate(),)},
            EncryptionKey.generate(),
        )


class HubSimulator:
    """Keys, roots and bundle building for one simulated hub."""

    def __init__(self, folder: Path, *, site_id: str = "site-a", now: int = NOW, keys: HubKeys | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.site_id = site_id
        self.now = now
        keys = keys or HubKeys.generate()
        self.root_keys = list(keys.root_keys)
        self.root_threshold = 2
        self.channel_keys: dict[str, list[SigningKey]] = {c: list(k) for c, k in keys.channel_keys.items()}
        self.encryption = keys.encryption
        self.key_expires = now + 365 * DAY
        self.revoked: list[str] = []
        self.roots: dict[int, bytes] = {}
        self.roots[1] = self.make_root(1)
        self.sequences: dict[str, int] = defaultdict(int)
        self.counter = 0

    # --- roots -----------------------------------------------------------------------------------

    def root_doc(self, version: int, **overrides: Any) -> dict[str, Any]:
        document = root_document(
            version=version, name="Simulated hub (TEST ONLY)", root_keys=self.root_keys,
            root_threshold=self.root_threshold, channel_keys=self.channel_keys,
            encryption_public=self.encryption.public_raw, issued_at=self.now - DAY, expires=self.now + 3650 * DAY,
            key_expires=self.key_expires, revoked=self.revoked,
        )
        document.update(overrides)
        return document

    def make_root(self, version: int, signers: list[SigningKey] | None = None, **overrides: Any) -> bytes:
        return sign_root(self.root_doc(version, **overrides), signers if signers is not None else self.root_keys)

    def root_file(self, version: int = 1) -> Path:
        path = self.folder / f"root-v{version}.json"
        path.write_bytes(self.roots[version])
        return path

    # --- payloads --------------------------------------------------------------------------------

    def model_payloads(self, name: str | None = None, version: int = 2, onnx_bytes: bytes | None = None,
                       card: dict[str, Any] | None = None) -> list[Payload]:
        name = name or samples.DEMO_MODEL_NAME
        return [
            Payload("model", "onnx_model", f"{name}-v{version}.onnx", onnx_bytes or samples.tiny_classifier_onnx(),
                    {"card": "card"}),
            Payload("card", "model_card", f"{name}-v{version}.card.json",
                    canonical.dumps(card or samples.model_card(name, version))),
        ]

    def template_payload(self, **changes: Any) -> list[Payload]:
        document = samples.template_document()
        document.update(changes)
        return [Payload("template", "template", f"{document['name'].replace(' ', '-')}-{document['version']}.json",
                        canonical.dumps(document))]

    def label_type_payload(self, document: dict[str, Any]) -> list[Payload]:
        return [Payload("label-type", "label_type", f"{document['name']}-{document['version']}.json",
                        canonical.dumps(document))]

    def labels_payload(self, rows: list[dict[str, Any]]) -> list[Payload]:
        return [Payload("labels", "canonical_labels", "labels.parquet", samples.labels_parquet(rows))]

    # --- bundles ---------------------------------------------------------------------------------

    def keys_for(self, channel: str) -> list[SigningKey]:
        if channel == "truststore":
            return self.root_keys[:2]
        return list(self.channel_keys[channel])

    def build(self, channel: str, payloads: list[Payload], *, sequence: int | None = None,
              signers: list[SigningKey] | None = None, sites: list[str] | None = None, issued_at: int | None = None,
              expires: int | None = None, edit: Callable[[dict[str, Any]], None] | None = None,
              manifest_bytes: bytes | None = None, signatures: list[Signature] | None = None,
              payload_override: bytes | None = None, tail: bytes = b"", cut: int = 0,
              bundle_id: str | None = None, name: str | None = None, **fields: Any) -> Built:
        """A bundle file; every keyword bends one step (see the module docstring)."""
        if sequence is None:
            self.sequences[channel] += 1
            sequence = self.sequences[channel]
        sources = [PayloadSource(p.id, p.kind, p.name, data=p.data, schema_version=p.schema_version, meta=p.meta)
                   for p in payloads]
        import hashlib

        measured = [(len(p.data), hashlib.sha256(p.data).hexdigest()) for p in payloads]
        issued = self.now - 60 if issued_at is None else issued_at
        document = manifest_document(
            channel=channel, issuer="sim-hub", sequence=sequence, issued_at=issued,
            expires=issued + 30 * DAY if expires is None else expires, sites=sites or [self.site_id],
            entries=describe_entries(sources, measured), bundle_id=bundle_id or str(uuid.uuid4()), **fields,
        )
        if edit is not None:
            document = copy.deepcopy(document)
            edit(document)
        body = manifest_bytes if manifest_bytes is not None else canonical.dumps(document)
        sigs = signatures if signatures is not None else sign(signers if signers is not None else self.keys_for(channel),
                                                              PAYLOAD_TYPE_MANIFEST, body)
        payload = payload_override if payload_override is not None else b"".join(p.data for p in payloads)
        data = encode_prefix(body, sigs) + payload + tail
        if cut:
            data = data[:-cut]
        self.counter += 1
        path = self.folder / (name or f"bundle-{self.counter:04d}.vbundle")
        path.write_bytes(data)
        return Built(path, document, body, sigs, payload)

    def rotation(self, *, revoke: list[str] | None = None, new_models_key: bool = False,
                 version: int | None = None, signers: list[SigningKey] | None = None,
                 new_root_keys: list[SigningKey] | None = None) -> bytes:
        """The next root version (returned, and remembered as current unless `version` is forced)."""
        current = max(self.roots)
        target = current + 1 if version is None else version
        old_root_keys = list(self.root_keys)
        if revoke:
            self.revoked = sorted(set(self.revoked) | set(revoke))
            for channel, keys in self.channel_keys.items():
                self.channel_keys[channel] = [k for k in keys if k.key_id not in revoke]
        if new_models_key:
            self.channel_keys["models"] = [*self.channel_keys["models"], SigningKey.generate()]
        if new_root_keys is not None:
            self.root_keys = new_root_keys
        default_signers = list(dict.fromkeys(old_root_keys + self.root_keys))
        envelope = self.make_root(target, signers if signers is not None else default_signers)
        self.roots[target] = envelope
        return envelope

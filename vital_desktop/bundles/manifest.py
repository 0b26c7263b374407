"""The manifest: strict parsing of the signed JSON into frozen dataclasses.

`parse_manifest` is called only on bytes whose signature has already verified. It checks the
JSON Schema (`schemas/manifest.schema.json`) and then what a schema cannot say: unique entry
ids, names unique without regard to case, no device names, the payload kinds a channel may
carry, the direction a channel flows, and entries that tile the payload area exactly.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jsonschema

from vital_desktop.bundles import canonical
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.limits import MAX_BUNDLE_BYTES, MAX_MANIFEST_BYTES

CHANNELS = ("models", "templates", "labels", "truststore", "config", "exports", "taxonomy", "app")

#: What each channel may carry. A kind outside its channel is refused.
CHANNEL_KINDS: dict[str, frozenset[str]] = {
    "models": frozenset({"onnx_model", "gguf_model", "model_card", "onnx_backbone"}),
    "templates": frozenset({"template"}),
    "labels": frozenset({"canonical_labels"}),
    "truststore": frozenset({"root_metadata"}),
    "config": frozenset({"config"}),
    "exports": frozenset({"canonical_labels", "feedback", "predictions", "mc_results", "audit_head", "label_types"}),
    "taxonomy": frozenset({"label_type"}),  # label types the hub publishes (one JSON document per version)
    "app": frozenset({"app_release", "app_sbom"}),  # an application update: one release archive and its SBOM
}

#: Which way a channel flows. Exports go up; everything else comes down from the hub.
CHANNEL_DIRECTION: dict[str, str] = {c: ("site_to_hub" if c == "exports" else "hub_to_site") for c in CHANNELS}

#: Windows device names: refused as logical names (with or without an extension).
RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)}
)


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in `vital_desktop/bundles/schemas/` (copied to `bundles/schemas/`)."""
    text = resources.files("vital_desktop.bundles").joinpath("schemas", name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_schema(document: Any, schema_name: str, code: str) -> None:
    """Raise `BundleRefused(code)` naming the first schema violation."""
    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise BundleRefused(code, f"{schema_name.split('.')[0]} does not match its schema at {where}: {error.message[:300]}")


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str
    name: str
    offset: int
    length: int
    sha256: str
    schema_version: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "name": self.name, "offset": self.offset, "length": self.length,
            "sha256": self.sha256, "schema_version": self.schema_version, "meta": dict(self.meta),
        }


@dataclass(frozen=True)
class Manifest:
    bundle_id: str
    direction: str
    issuer: str
    channel: str
    epoch: int
    sequence: int
    issued_at: int
    expires: int
    sites: tuple[str, ...]
    product: str
    app_min: str
    app_below: str
    entries: tuple[Entry, ...]
    encryption: dict[str, Any] | None
    notes: str
    document: dict[str, Any]

    @property
    def payload_length(self) -> int:
        return sum(e.length for e in self.entries)

    def entry(self, entry_id: str) -> Entry:
        for item in self.entries:
            if item.id == entry_id:
                return item
        raise BundleRefused("entry_missing", f"manifest has no entry {entry_id!r}")


def check_name(name: str) -> None:
    """Refuse logical names a file system could read as a path or a device (schema did the charset)."""
    stem = name.split(".", 1)[0].upper()
    if stem in RESERVED_NAMES:
        raise BundleRefused("entry_name", f"entry name {name!r} is a reserved device name")
    if ".." in name or "/" in name or "\\" in name or ":" in name or "\x00" in name:
        raise BundleRefused("entry_name", f"entry name {name!r} looks like a path")


def parse_manifest(manifest_bytes: bytes) -> Manifest:
    """Parse verified manifest bytes strictly (canonical form, schema, cross-field rules)."""
    document = canonical.loads(manifest_bytes, max_bytes=MAX_MANIFEST_BYTES, require_canonical=True)
    validate_schema(document, "manifest.schema.json", "manifest_schema")
    channel = document["channel"]
    if document["direction"] != CHANNEL_DIRECTION[channel]:
        raise BundleRefused("direction", f"channel {channel} flows {CHANNEL_DIRECTION[channel]}, not {document['direction']}")
    if (document.get("encryption") is not None) != (channel == "exports"):
        raise BundleRefused("encryption", "exports must be encrypted to the hub and nothing else may be")
    ids: set[str] = set()
    folded_names: set[str] = set()
    entries = []
    expected_offset = 0
    for raw in document["entries"]:
        entry = Entry(**raw)
        if entry.id in ids:
            raise BundleRefused("entry_duplicate", f"entry id {entry.id!r} appears twice")
        ids.add(entry.id)
        check_name(entry.name)
        folded = entry.name.casefold()
        if folded in folded_names:
            raise BundleRefused("entry_duplicate", f"entry name {entry.name!r} clashes with another (names ignore case)")
        folded_names.add(folded)
        if entry.kind not in CHANNEL_KINDS[channel]:
            raise BundleRefused("entry_kind", f"a {entry.kind} entry may not travel on the {channel} channel")
        if entry.offset != expected_offset:
            raise BundleRefused(
                "layout", f"entry {entry.id!r} starts at {entry.offset}, expected {expected_offset} (entries must be contiguous)"
            )
        expected_offset += entry.length
        if expected_offset > MAX_BUNDLE_BYTES:
            raise BundleRefused("layout", f"entries add up to more than the cap of {MAX_BUNDLE_BYTES} bytes")
        entries.append(entry)
    targets = document["targets"]
    if document["expires"] <= document["issued_at"]:
        raise BundleRefused("expires", "the bundle expires before it was issued")
    return Manifest(
        bundle_id=document["bundle_id"], direction=document["direction"], issuer=document["issuer"], channel=channel,
        epoch=document["epoch"], sequence=document["sequence"], issued_at=document["issued_at"],
        expires=document["expires"], sites=tuple(targets["sites"]), product=targets["product"],
        app_min=targets["app_version"]["min"], app_below=targets["app_version"]["below"], entries=tuple(entries),
        encryption=document.get("encryption"), notes=document.get("notes", ""), document=document,
    )


def check_layout(manifest: Manifest, payload_offset: int, file_size: int) -> None:
    """The file must end exactly where the last entry ends: no truncation, no unsigned tail."""
    expected = payload_offset + manifest.payload_length
    if file_size < expected:
        raise BundleRefused("truncated", f"file has {file_size} bytes but the manifest accounts for {expected}")
    if file_size > expected:
        raise BundleRefused(
            "trailing_bytes", f"file has {file_size - expected} bytes that no signed entry covers"
        )

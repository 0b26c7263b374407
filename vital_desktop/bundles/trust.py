"""Every trust decision about bundles, in one IO-free module (after python-tuf's TrustedMetadataSet).

Nothing here reads files, the clock or the store: callers pass bytes, the current time (Unix
seconds) and the site's recorded state, and get back a decision or a `BundleRefused`.
The records these decisions take and return live in `trust_types`, the signature counting and
parsing under them in `trust_parse` (neither decides anything); all are importable from here.

Invariants
----------
1. Trust starts from one root document the site installed. It is used only if it carries a
   threshold of valid signatures by its own root keys; a missing or broken root makes every
   check fail (fail closed): `TrustedState` cannot be built without one.
2. A root is replaced only by version N+1, signed by a threshold of version N's root keys
   *and* a threshold of its own root keys, and keeping every key version N revoked. A chain
   N -> N+1 -> ... is walked one step at a time on a copy; the caller applies the result only
   if every step and the final expiry check pass (`RootChain`).
3. Signatures are checked over the exact manifest bytes (DSSE PAE) *before* those bytes are
   parsed. A signature counts only if its key is known, not revoked, not expired, and scoped to
   the manifest's channel (root keys are scoped to truststore only); each key counts once, so
   repeating a signature never reaches a threshold. Truststore and config need two keys.
4. A manifest is accepted only if: it targets this site, this product and this app version;
   it has not expired; it is not dated in the future beyond `CLOCK_SKEW_SECONDS`; the site
   clock is not behind the newest issued_at already accepted; its issued_at is not older than
   the channel's newest; and its (epoch, sequence) is greater than the channel's last.
5. The same (channel, epoch, sequence) with the same manifest bytes is a no-op
   (`already_imported`); with different bytes it is refused and flagged as an alarm.
6. A site export is accepted at the hub only if signed by the key registered for the site it
   names, encrypted to the hub's current key, and its sequence is new for that site.
7. Decisions are all-or-nothing: a function returns a value only when every check passed.
8. A site export's audit head must be signed by that site's registered key and must continue
   the head the hub saw in the previous export (never a lower number; the same number only
   with the same hash) -- a cut or consistently rewritten site log shows up here.
10. An application update (channel ``app``) needs two release-channel signatures, one release
   archive for this platform and a newer version, and an SBOM naming that archive
   (`decide_app_update`, `check_app_sbom`; see the section near the end).
11. A backbone (entry kind ``onnx_backbone`` on the models channel) is registered only after
   it ran in the sandbox and, on two blank images of the size its metadata declares, gave one
   finite vector per image ([2, D], 1 <= D <= `MAX_BACKBONE_DIM`) from an NCHW input with the
   declared channels (`decide_backbone`: the caller passes what it observed, nothing is read here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vital_desktop.bundles import canonical
from vital_desktop.bundles.envelope import PAYLOAD_TYPE_ROOT, Signature, decode_json_envelope
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import key_id as compute_key_id
from vital_desktop.bundles.keys import verify_ed25519
from vital_desktop.bundles.limits import CLOCK_SKEW_SECONDS, MAX_ROOT_CHAIN
from vital_desktop.bundles.manifest import Manifest
from vital_desktop.bundles.trust_parse import (
    AUDIT_HEAD_CONTEXT,
    audit_head_message,
    is_sha256,
    manifest_digest,
    parse_root_payload,
    parse_version,
    utc_text,
    valid_signers,
)
from vital_desktop.bundles.trust_types import (
    PRODUCT,
    BackboneTrial,
    ChannelState,
    Check,
    Decision,
    DeploymentManifest,
    HubContext,
    InstalledApp,
    KeyRecord,
    PackageFile,
    Root,
    SigningKeyInfo,
    SiteContext,
)

# The records (trust_types) and the parsing helpers (trust_parse) are imported from here by callers.
__all__ = [
    "APP_CHANNEL", "APP_MIN_SIGNATURES", "AUDIT_HEAD_CONTEXT", "DEPLOYMENT_CHANNEL", "DEPLOYMENT_CONTROL_FILES",
    "DEPLOYMENT_FORMAT", "DEPLOYMENT_MODEL_FILE", "DEPLOYMENT_PAYLOAD_TYPE", "MAX_BACKBONE_DIM",
    "MAX_DEPLOYMENT_FILES", "MAX_DEPLOYMENT_FILE_BYTES", "PRODUCT",
    "BackboneTrial", "ChannelState", "Check", "Decision", "DeploymentManifest", "HubContext", "InstalledApp",
    "KeyRecord", "PackageFile", "Root", "RootChain", "SigningKeyInfo", "SiteContext",
    "audit_head_message", "check_app_sbom", "check_audit_head", "check_package_name", "decide", "decide_app_update",
    "decide_backbone", "decide_export", "decide_package_file_hash", "decide_package_files", "deployment_keys",
    "is_sha256", "load_trusted_root", "manifest_digest", "parse_deployment_manifest", "parse_root_payload", "parse_version",
    "require_unexpired_root", "utc_text", "valid_signers", "verify_deployment_signature", "verify_export_signatures",
    "verify_manifest_signatures", "verify_root_update",
]


# --- root documents ---------------------------------------------------------------------------


def load_trusted_root(envelope: bytes | None, now: int, *, allow_expired: bool = False) -> Root:
    """The installed root, verified against itself; any defect refuses (invariant 1: fail closed).

    ``allow_expired`` follows TUF's client workflow (5.3): an expired trusted root may still be
    used to verify the NEXT root versions (a truststore bundle); the chain's final root must
    then be unexpired (`RootChain.finish`). Every other use refuses an expired root."""
    if not envelope:
        raise BundleRefused("trust_store", "no root of trust is installed: every bundle is refused until one is")
    try:
        body, signatures = decode_json_envelope(envelope, PAYLOAD_TYPE_ROOT)
        # Before parsing, at least one signature must verify with a key that the body claims:
        # the body is parsed once to learn its keys, then the threshold is counted.
        root = parse_root_payload(body, envelope)
    except BundleRefused as exc:
        raise BundleRefused("trust_store", f"the installed root of trust is corrupt: {exc.message}") from exc
    valid = valid_signers(root.root_keys, PAYLOAD_TYPE_ROOT, body, signatures)
    if len(valid) < root.root_threshold:
        raise BundleRefused(
            "trust_store",
            f"the installed root of trust has {len(valid)} valid root signatures, needs {root.root_threshold}",
        )
    if root.expires <= now and not allow_expired:
        raise BundleRefused("root_expired", "the installed root of trust has expired; install a newer root from the hub")
    return root


def require_unexpired_root(root: Root, channel: str, now: int) -> None:
    """Only a truststore bundle may be verified with an expired root (it brings the next one)."""
    if root.expires <= now and channel != "truststore":
        raise BundleRefused("root_expired", "the installed root of trust has expired; import the hub's truststore "
                                            "bundle (it can rotate from an expired root) before any other bundle")


def verify_root_update(trusted: Root, envelope: bytes) -> Root:
    """Verify one step of a root chain (invariant 2). Expiry is checked by `RootChain.finish`."""
    body, signatures = decode_json_envelope(envelope, PAYLOAD_TYPE_ROOT)
    # Raw bytes first: the old root's threshold must hold before the new document is parsed.
    old_valid = valid_signers(trusted.root_keys, PAYLOAD_TYPE_ROOT, body, signatures)
    if len(old_valid) < trusted.root_threshold:
        raise BundleRefused(
            "root_threshold_old",
            f"the new root has {len(old_valid)} valid signatures by the current root keys, needs {trusted.root_threshold}",
        )
    new = parse_root_payload(body, envelope)
    if new.version != trusted.version + 1:
        raise BundleRefused(
            "root_version", f"root version {new.version} does not follow version {trusted.version} (no skipping)"
        )
    new_valid = valid_signers(new.root_keys, PAYLOAD_TYPE_ROOT, body, signatures)
    if len(new_valid) < new.root_threshold:
        raise BundleRefused(
            "root_threshold_new",
            f"the new root has {len(new_valid)} valid signatures by its own keys, needs {new.root_threshold}",
        )
    if not trusted.revoked <= new.revoked:
        raise BundleRefused("root_revocation", "the new root forgets a revoked key (revocations are permanent)")
    return new


@dataclass
class RootChain:
    """Walks root versions on a copy; `finish` returns the final root only if the whole chain holds."""

    start: Root
    current: Root = field(init=False)
    steps: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.current = self.start

    def step(self, envelope: bytes) -> Root:
        self.steps += 1
        if self.steps > MAX_ROOT_CHAIN:
            raise BundleRefused("root_chain", f"more than {MAX_ROOT_CHAIN} root versions in one update")
        self.current = verify_root_update(self.current, envelope)
        return self.current

    def finish(self, now: int) -> Root:
        if self.steps == 0:
            raise BundleRefused("root_chain", "the truststore bundle holds no root versions")
        if self.current.expires <= now:
            raise BundleRefused("root_expired", f"root version {self.current.version} has already expired")
        return self.current


# --- bundle decisions -----------------------------------------------------------------------------


def verify_manifest_signatures(root: Root, manifest_bytes: bytes, signatures: list[Signature], payload_type: str) -> set[str]:
    """Raw-bytes phase (invariant 3): ids of known, unrevoked keys whose signature verifies.

    Scope, expiry and threshold need the channel, so they are checked after parsing by
    `decide`. This phase alone refuses unsigned, garbage-signed and unknown-key bundles
    without parsing a byte of the manifest.
    """
    if not signatures:
        raise BundleRefused("no_signatures", "the bundle carries no signatures")
    known = {kid: info.public for kid in {s.key_id for s in signatures} if (info := root.key(kid)) is not None}
    if not known:
        revoked = [s.key_id for s in signatures if s.key_id in root.revoked]
        if revoked:
            raise BundleRefused("key_revoked", f"signed only by revoked key {revoked[0][:16]}…")
        raise BundleRefused("unknown_key", "signed only by keys this site does not trust")
    valid = valid_signers(known, payload_type, manifest_bytes, signatures)
    if not valid:
        raise BundleRefused("signature", "no signature on the manifest verifies")
    return valid


def _threshold_check(root: Root, manifest: Manifest, signers: set[str], now: int) -> Check:
    channel = manifest.channel
    needed = root.thresholds.get(channel)
    if needed is None:
        return Check("threshold", False, "key_scope", f"the root names no keys for the {channel} channel")
    counted: set[str] = set()
    expired: list[str] = []
    out_of_scope: list[str] = []
    for kid in signers:
        info = root.key(kid)
        if info is None:
            continue
        if channel not in info.channels:
            out_of_scope.append(kid)
        elif info.expires is not None and info.expires <= now:
            expired.append(kid)
        else:
            counted.add(kid)
    if len(counted) >= needed:
        return Check("threshold", True, "", f"{len(counted)} of {needed} required keys for {channel} signed")
    if not counted and expired:
        return Check("threshold", False, "key_expired", f"key {expired[0][:16]}… expired; it may no longer sign")
    if not counted and out_of_scope:
        return Check("threshold", False, "key_scope", f"key {out_of_scope[0][:16]}… may not sign for the {channel} channel")
    return Check(
        "threshold", False, "threshold", f"{len(counted)} valid key(s) for {channel} signed; {needed} are required"
    )


def decide(root: Root, manifest: Manifest, manifest_bytes: bytes, signers: set[str], site: SiteContext) -> Decision:
    """Every policy check on a hub-to-site manifest whose signatures were verified (invariants 3-5).

    All checks run (so `vital bundle verify` can explain each); the outcome is the first failure.
    """
    digest = manifest_digest(manifest_bytes)
    now = site.now
    checks: list[Check] = [Check("signature", True, "", f"{len(signers)} valid signature(s) on the manifest bytes")]
    checks.append(_threshold_check(root, manifest, signers, now))
    if manifest.direction != "hub_to_site":
        checks.append(Check("direction", False, "direction", "a site imports only hub-to-site bundles"))
    # Replays first: the same bytes again are a harmless no-op; the same version with other bytes is an alarm.
    same = site.accepted_same_version_sha256 or site.accepted_same_id_sha256
    if same is not None and same == digest:
        checks.append(Check("replay", False, "already_imported", "this exact bundle was already imported; nothing to do"))
        return Decision("already_imported", tuple(checks), frozenset(signers))
    if same is not None:
        checks.append(Check(
            "replay", False, "same_version_different_content",
            f"a different bundle with {manifest.channel} epoch {manifest.epoch} sequence {manifest.sequence} "
            "(or the same bundle id) was already imported: possible tampering at the hub or on the stick",
        ))
        return Decision("refuse", tuple(checks), frozenset(signers), alarm=True)
    checks.append(Check("replay", True, "", "not seen before"))
    skew = CLOCK_SKEW_SECONDS
    if site.newest_issued_at is not None and now + skew < site.newest_issued_at:
        checks.append(Check("clock", False, "clock_behind",
                            "this computer's clock is behind the newest bundle already accepted; fix the clock"))
    else:
        checks.append(Check("clock", True, "", "this computer's clock is not behind the newest accepted bundle"))
    if manifest.expires <= now:
        checks.append(Check("expiry", False, "expired", "the bundle has expired (ask the hub for a fresh one)"))
    else:
        checks.append(Check("expiry", True, "", f"valid until {utc_text(manifest.expires)}"))
    if manifest.issued_at > now + skew:
        checks.append(Check("issued_at", False, "future_dated", "the bundle is dated in the future"))
    elif site.channel is not None and site.channel.issued_at is not None and manifest.issued_at < site.channel.issued_at:
        checks.append(Check("issued_at", False, "issued_before_newest",
                            f"the bundle was issued before the newest {manifest.channel} bundle already accepted"))
    else:
        checks.append(Check("issued_at", True, "", f"issued {utc_text(manifest.issued_at)}, not in the future nor before "
                                                      "the newest accepted"))
    if site.site_id not in manifest.sites:
        checks.append(Check("target_site", False, "wrong_site",
                            f"the bundle is for {', '.join(manifest.sites)[:200]}, not {site.site_id}"))
    else:
        checks.append(Check("target_site", True, "", f"meant for this site ({site.site_id})"))
    app = parse_version(site.app_version)
    if manifest.product != site.product or not (parse_version(manifest.app_min) <= app < parse_version(manifest.app_below)):
        checks.append(Check("app_version", False, "app_version",
                            f"the bundle is for {manifest.product} {manifest.app_min} up to {manifest.app_below}, "
                            f"this is {site.product} {site.app_version}"))
    else:
        checks.append(Check("app_version", True, "", f"for {manifest.product} {manifest.app_min} up to "
                                                        f"{manifest.app_below}; this is {site.app_version}"))
    last = site.channel
    if last is not None and (manifest.epoch, manifest.sequence) <= (last.epoch, last.sequence):
        checks.append(Check("version", False, "rollback",
                            f"{manifest.channel} epoch {manifest.epoch} sequence {manifest.sequence} is not newer than the "
                            f"accepted epoch {last.epoch} sequence {last.sequence}"))
    else:
        checks.append(Check("version", True, "", f"{manifest.channel} epoch {manifest.epoch} sequence "
                                                    f"{manifest.sequence} is newer than the last accepted"))
    outcome = "accept" if all(c.ok for c in checks) else "refuse"
    return Decision(outcome, tuple(checks), frozenset(signers))


# --- application updates (channel ``app``) ------------------------------------------------------
# Invariant 10: an application update is accepted only if (a) `decide` accepted its manifest
# (site, expiry, freshness, sequence); (b) at least APP_MIN_SIGNATURES distinct release-channel
# keys (scoped to ``app``, known, unrevoked, unexpired) signed the manifest bytes -- never fewer
# than two, whatever the root's threshold says, as for a truststore rotation; (c) it carries
# exactly one release archive, for this computer's platform, whose version is newer than the
# installed one, and at most one SBOM; (d) after extraction, the SBOM names the archive by the
# SHA-256 the signed manifest gives it (`check_app_sbom`). The caller unpacks only after both.

APP_CHANNEL = "app"
APP_MIN_SIGNATURES = 2


def _app_signers_check(root: Root, signers: set[str], now: int) -> Check:
    needed = max(APP_MIN_SIGNATURES, root.thresholds.get(APP_CHANNEL, APP_MIN_SIGNATURES))
    counted = {kid for kid in signers if (info := root.key(kid)) is not None and APP_CHANNEL in info.channels
               and (info.expires is None or info.expires > now)}
    if len(counted) < needed:
        return Check("release_signatures", False, "app_signatures",
                     f"an application update needs {needed} signatures by release-channel keys; it has "
                     f"{len(counted)}")
    return Check("release_signatures", True, "", f"{len(counted)} release-channel keys signed (needs {needed})")


def decide_app_update(root: Root, manifest: Manifest, signers: set[str], base: Decision,
                      installed: InstalledApp, now: int) -> Decision:
    """Invariant 10 (a)-(c) on top of `decide`'s decision for the same manifest (`base`)."""
    if base.outcome == "already_imported":
        return base
    checks = list(base.checks)
    if manifest.channel != APP_CHANNEL:
        checks.append(Check("channel", False, "not_app", f"a {manifest.channel} bundle is not an application update"))
        return Decision("refuse", tuple(checks), frozenset(signers))
    checks.append(_app_signers_check(root, signers, now))
    releases = [e for e in manifest.entries if e.kind == "app_release"]
    sboms = [e for e in manifest.entries if e.kind == "app_sbom"]
    if len(releases) != 1 or len(sboms) > 1:
        checks.append(Check("release", False, "app_entries",
                            f"an application update carries one release archive and at most one SBOM; this one "
                            f"has {len(releases)} and {len(sboms)}"))
        return Decision("refuse", tuple(checks), frozenset(signers))
    meta = releases[0].meta
    version, platform = str(meta.get("version", "")), str(meta.get("platform", ""))
    if platform != installed.platform:
        checks.append(Check("platform", False, "app_platform",
                            f"this update is for {platform[:40] or 'no platform'}, this computer is {installed.platform}"))
    else:
        checks.append(Check("platform", True, "", f"for {platform}"))
    if not version or parse_version(version) <= parse_version(installed.version):
        checks.append(Check("app_release_version", False, "app_not_newer",
                            f"version {version[:40] or '?'} is not newer than the installed {installed.version}"))
    else:
        checks.append(Check("app_release_version", True, "", f"version {version} is newer than the installed "
                                                                f"{installed.version}"))
    outcome = "accept" if all(c.ok for c in checks) else "refuse"
    return Decision(outcome, tuple(checks), frozenset(signers))


def check_app_sbom(manifest: Manifest, sbom_hashes: set[str] | None) -> Check:
    """Invariant 10 (d): the SBOM describes the archive the signed manifest hashes (None: no SBOM)."""
    releases = [e for e in manifest.entries if e.kind == "app_release"]
    if sbom_hashes is None:
        return Check("sbom", True, "", "no SBOM travels with this update")
    if len(releases) != 1 or releases[0].sha256 not in sbom_hashes:
        return Check("sbom", False, "app_sbom", "the SBOM does not describe this release archive (its hash differs)")
    return Check("sbom", True, "", "the SBOM describes this release archive")


# --- hub side: site exports -----------------------------------------------------------------------


def verify_export_signatures(site_keys: Mapping[str, bytes], manifest_bytes: bytes, signatures: list[Signature],
                              payload_type: str) -> set[str]:
    """Raw-bytes phase at the hub: the ids of registered sites whose key signed (before parsing)."""
    if not signatures:
        raise BundleRefused("no_signatures", "the export carries no signatures")
    by_key_id = {compute_key_id(public): site for site, public in site_keys.items()}
    known = {s.key_id: site_keys[by_key_id[s.key_id]] for s in signatures if s.key_id in by_key_id}
    if not known:
        raise BundleRefused("unknown_key", "the export is signed by no site registered at this hub")
    valid = valid_signers(known, payload_type, manifest_bytes, signatures)
    if not valid:
        raise BundleRefused("signature", "no signature on the export verifies")
    return {by_key_id[kid] for kid in valid}


def check_audit_head(head: Mapping[str, Any], site_public: bytes, previous: Mapping[str, Any] | None) -> Check:
    """Invariant 8 (hub side): an export's audit head is signed by the site's registered key, and it
    continues the log the hub saw last: a lower sequence number, or the same number with another
    hash, means the site's log was cut or rewritten."""
    seq, row_hash = head.get("seq"), head.get("hash")
    if not isinstance(seq, int) or not isinstance(row_hash, str):
        return Check("audit_head", False, "audit_head", "the export's audit head is malformed")
    try:
        signature = bytes.fromhex(str(head.get("signature", "")))
    except ValueError:
        signature = b""
    if compute_key_id(site_public) != head.get("key_id") or not verify_ed25519(
            site_public, signature, audit_head_message(seq, row_hash)):
        return Check("audit_head", False, "audit_head", "the export's audit head is not signed by the site's key")
    if previous is not None:
        last_seq, last_hash = int(previous.get("seq", 0)), previous.get("hash")
        if seq < last_seq or (seq == last_seq and row_hash != last_hash):
            return Check("audit_head", False, "audit_rewritten",
                         f"the site's audit log was cut or rewritten: head {seq} after head {last_seq} seen before")
    return Check("audit_head", True, "", f"audit head {seq} signed by the site")


def decide_export(manifest: Manifest, signer_sites: set[str], hub: HubContext) -> Decision:
    """Invariant 6: the export's issuer's registered key signed it, it is for us, and it is new."""
    checks: list[Check] = []
    if manifest.channel != "exports" or manifest.direction != "site_to_hub":
        checks.append(Check("channel", False, "direction", "not a site export"))
        return Decision("refuse", tuple(checks), frozenset())
    if manifest.issuer not in signer_sites:
        checks.append(Check("signature", False, "wrong_site_key",
                            f"the export claims site {manifest.issuer!r} but is signed by {', '.join(sorted(signer_sites))}"))
        return Decision("refuse", tuple(checks), frozenset())
    checks.append(Check("signature", True, "", f"signed by site {manifest.issuer}"))
    encryption = manifest.encryption or {}
    if encryption.get("recipient_key_id") != hub.hub_encryption_key_id:
        checks.append(Check("recipient", False, "recipient", "the export is encrypted to another hub key"))
    else:
        checks.append(Check("recipient", True))
    last = hub.last_sequence.get(manifest.issuer, 0)
    if manifest.sequence <= last:
        checks.append(Check("sequence", False, "replay",
                            f"sequence {manifest.sequence} from {manifest.issuer} was already ingested (last {last})"))
    else:
        checks.append(Check("sequence", True))
    if manifest.issued_at > hub.now + CLOCK_SKEW_SECONDS:
        checks.append(Check("issued_at", False, "future_dated", "the export is dated in the future"))
    outcome = "accept" if all(c.ok for c in checks) else "refuse"
    return Decision(outcome, tuple(checks), frozenset(signer_sites))


# --- deployment packages ----------------------------------------------------------------------
# Invariant 9: a deployment package (a folder: manifest.json, manifest.sig.json, files) is
# trusted only if (a) a key scoped to the deployment channel -- this site's own key, or a hub
# key whose scope includes ``deployment`` -- not revoked and not expired, signed the exact
# manifest bytes, checked BEFORE they are parsed; (b) the manifest is canonical JSON of the
# package format, lists at least the model, and every name is a plain relative path (no
# ``..``, no absolute path, no backslash, no drive, no control characters); (c) the folder
# holds exactly the listed files (nothing missing, nothing unlisted, no links); and (d) the
# caller's hash of each file matches its size and SHA-256, the model's also the manifest's
# model hash. The caller does the IO (listing, hashing); the decisions are here.

DEPLOYMENT_CHANNEL = "deployment"
DEPLOYMENT_PAYLOAD_TYPE = "application/vnd.vital.deployment-manifest+json;version=1"
DEPLOYMENT_FORMAT = "vital-deployment-package"
DEPLOYMENT_MODEL_FILE = "model.onnx"
DEPLOYMENT_CONTROL_FILES = frozenset({"manifest.json", "manifest.sig.json"})
MAX_DEPLOYMENT_FILES = 10_000
MAX_DEPLOYMENT_FILE_BYTES = 8 * 1024**3


def deployment_keys(records: list[KeyRecord], now: int) -> dict[str, bytes]:
    """Keys that may sign deployment packages: the site's own key and keys scoped to ``deployment``."""
    return {r.key_id: r.public for r in records
            if not r.revoked and (r.expires is None or r.expires > now)
            and compute_key_id(r.public) == r.key_id
            and (r.role == "site" or DEPLOYMENT_CHANNEL in r.channels)}


def _refuse_package(code: str, message: str) -> BundleRefused:
    return BundleRefused(code, f"deployment package: {message}")


def check_package_name(name: object) -> str:
    """A plain relative name inside the package, or `BundleRefused` (code ``package_name``)."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise _refuse_package("package_name", f"file name {str(name)[:80]!r} is empty or too long")
    if "\\" in name or name.startswith("/") or ":" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _refuse_package("package_name", f"file name {name[:80]!r} is not a plain relative name")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise _refuse_package("package_name", f"file name {name[:80]!r} is not a plain relative name")
    if name in DEPLOYMENT_CONTROL_FILES:
        raise _refuse_package("package_name", f"{name} cannot be listed as a package file")
    return name


def verify_deployment_signature(envelope: bytes, manifest_bytes: bytes, keys: Mapping[str, bytes]) -> set[str]:
    """The ids of trusted deployment keys whose signature covers exactly `manifest_bytes` (not yet parsed)."""
    if not keys:
        raise _refuse_package("no_trusted_key", "this site trusts no key for deployment packages")
    body, signatures = decode_json_envelope(envelope, DEPLOYMENT_PAYLOAD_TYPE)
    valid = valid_signers(keys, DEPLOYMENT_PAYLOAD_TYPE, body, signatures)
    if not valid:
        raise _refuse_package("signature", "the manifest signature is not valid for any trusted deployment key")
    if body != manifest_bytes:
        raise _refuse_package("manifest_mismatch", "manifest.json differs from the signed manifest")
    return valid


def parse_deployment_manifest(manifest_bytes: bytes) -> DeploymentManifest:
    """Parse signed manifest bytes strictly: format, model, and a non-empty file list with safe names."""
    from vital_desktop.bundles.limits import MAX_MANIFEST_BYTES

    document = canonical.loads(manifest_bytes, max_bytes=MAX_MANIFEST_BYTES, require_canonical=True)
    if not isinstance(document, dict) or document.get("format") != DEPLOYMENT_FORMAT \
            or document.get("format_version") != 1:
        raise _refuse_package("manifest", f"the manifest is not a {DEPLOYMENT_FORMAT} version 1 manifest")
    model, files = document.get("model"), document.get("files")
    if not isinstance(model, dict) or not is_sha256(model.get("sha256")) or not isinstance(model.get("name"), str):
        raise _refuse_package("manifest", "the manifest does not name the model and its SHA-256")
    if not isinstance(files, dict) or not files or len(files) > MAX_DEPLOYMENT_FILES:
        raise _refuse_package("manifest", "the manifest lists no files (or too many)")
    listed = []
    for name, entry in sorted(files.items()):
        check_package_name(name)
        if not isinstance(entry, dict) or set(entry) != {"size", "sha256"} or not is_sha256(entry["sha256"]) \
                or not isinstance(entry["size"], int) or not 0 <= entry["size"] <= MAX_DEPLOYMENT_FILE_BYTES:
            raise _refuse_package("manifest", f"the entry of {name[:80]!r} needs a size and a SHA-256")
        listed.append(PackageFile(name, entry["size"], entry["sha256"]))
    if len({f.name.lower() for f in listed}) != len(listed):
        raise _refuse_package("package_name", "two files differ only in case")
    by_name = {f.name: f for f in listed}
    if DEPLOYMENT_MODEL_FILE not in by_name:
        raise _refuse_package("model_missing", f"the manifest does not list {DEPLOYMENT_MODEL_FILE}")
    if by_name[DEPLOYMENT_MODEL_FILE].sha256 != model["sha256"]:
        raise _refuse_package("model_hash", f"{DEPLOYMENT_MODEL_FILE} is not the model the manifest names")
    return DeploymentManifest(model, tuple(listed), document)


def decide_package_files(manifest: DeploymentManifest, present: set[str], links: set[str]) -> None:
    """The folder holds exactly the listed files (plus the two control files), none of them a link."""
    listed = {f.name for f in manifest.files}
    if links:
        raise _refuse_package("package_link", f"{min(links)[:80]} is a link, not a file")
    missing = sorted(listed - present)
    if missing:
        raise _refuse_package("package_missing", f"{missing[0][:80]} is missing" + (
            f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    unlisted = sorted(present - listed - DEPLOYMENT_CONTROL_FILES)
    if unlisted:
        raise _refuse_package("package_unlisted", f"{unlisted[0][:80]} is not listed in the signed manifest")


def decide_package_file_hash(entry: PackageFile, size: int, sha256: str) -> None:
    """A file's measured size and SHA-256 match the signed manifest."""
    if size != entry.size or sha256 != entry.sha256:
        raise _refuse_package("payload_hash", f"{entry.name[:80]} does not match its SHA-256 in the manifest")


# --- backbones (invariant 11) -----------------------------------------------------------------

MAX_BACKBONE_DIM = 65_536


def decide_backbone(trial: BackboneTrial) -> Check:
    """Accept a hub-signed backbone payload for registration, or raise `BundleRefused` saying why."""
    def refuse(message: str) -> BundleRefused:
        return BundleRefused("content", f"backbone {trial.entry!r}: {message}; nothing was registered")

    if trial.sandbox_error is not None:
        raise refuse(trial.sandbox_error)
    dims = trial.input_shape
    if dims and len(dims) != 4:
        raise refuse(f"the input must be an image batch [N, C, H, W], it has rank {len(dims)}")
    if dims and trial.channels and isinstance(dims[1], int) and dims[1] != trial.channels:
        raise refuse(f"the input takes {dims[1]} channel(s) but its colour mode needs {trial.channels}")
    if trial.problem is not None:
        raise refuse(trial.problem)
    if not dims:
        raise refuse("the graph declares no image input")
    shape = trial.output_shape
    if shape is None or len(shape) != 2 or shape[0] != 2 or not 1 <= shape[1] <= MAX_BACKBONE_DIM:
        raise refuse(f"the output must be one vector per image ([N, D]); two images gave shape "
                     f"{list(shape) if shape is not None else None} (pool or flatten it)")
    if not trial.output_finite:
        raise refuse("the output holds NaN or infinite values on a blank image")
    return Check("backbone", True, "", f"backbone {trial.entry!r} ran in the sandbox and gives {shape[1]}-d vectors")

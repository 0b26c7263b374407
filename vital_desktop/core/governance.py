"""The dual quality gates, usage constraints, and the export gate: the one place every way out asks.

Gate 1 (quality): the pair's status is ``labeled``. Gate 2 (governance): the use is allowed
and not prohibited. A sheet's data classification tags prohibit uses of its labels and
pairs: that is how PHI keeps data out of model weights while it stays usable for testing.

The export gate -- THE ONE CALL every way out of the site makes
----------------------------------------------------------------
::

    gate = services.site.export_gate(store_or_session, use=USE_OR_NONE, destination=DESTINATION)
    # == export_gate(site_export_policy, use=..., destination=...) defined here, with the policy read for you
    reason = gate.refusal(tags, allowed=ALLOWED_USES_OR_NONE, prohibited=PROHIBITED_USES_OR_NONE)
    # reason is None: the row may leave; else a short reason for the export summary
    kept, excluded = gate.split(rows, tags=lambda r: ..., allowed=lambda r: ..., prohibited=lambda r: ...)
    # kept: the rows that may leave; excluded: {reason: count}

- ``destination`` is one of `DESTINATIONS`: ``hub`` (site->hub bundles), ``file`` (label
  exports, every format), ``training`` (training and few-shot exports), ``deployment``
  (deployment packages), ``support`` (support bundles).
- ``use`` is one of `USES` when the export is for a use (training, few_shot...), else None.
- ``tags`` are the row's data classification tags (the label's own and its sheet's).

Rule: content tagged with a tag in `RESTRICTED_TAGS` (PHI, EXPORT_CONTROLLED) -- its data
AND its notes -- does not leave unless the site's export policy explicitly allows that tag
to that destination. The policy is set only by an administrator (``vital policy allow``),
every change audited; nothing else (no hub config bundle) can set it. Rows that may not
leave are dropped whole, never redacted field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

USES: tuple[str, ...] = ("training", "validation", "few_shot", "evaluation", "testing")

#: Uses each data classification tag prohibits, and why (shown to the user as the reason).
TAG_PROHIBITS: dict[str, tuple[tuple[str, ...], str]] = {
    "PHI": (("training", "validation"), "protected health information must not be learned into model weights"),
    "PII": (("training",), "personally identifiable information must not be learned into model weights"),
    "EXPORT_CONTROLLED": (("few_shot",), "export-controlled data must not appear in prompts or logs"),
    "CONFIDENTIAL": ((), ""),
}


def check_uses(uses: Iterable[str], what: str = "use") -> list[str]:
    """Validate use names; return them sorted and unique."""
    from vital_desktop.core.errors import ValidationError

    items = sorted({u.strip().lower() for u in uses if u and u.strip()})
    unknown = [u for u in items if u not in USES]
    if unknown:
        raise ValidationError(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(USES)}")
    return items


def apply_classification(
    tags: Iterable[str], allowed: Iterable[str] | None, prohibited: Iterable[str] | None, reason: str = ""
) -> tuple[list[str], list[str], str]:
    """Effective (allowed, prohibited, reason): tags add prohibitions; default allows every use."""
    prohibited_set = set(check_uses(prohibited or [], "prohibited use"))
    reasons = [reason] if reason else []
    for tag in sorted(set(tags)):
        uses, why = TAG_PROHIBITS.get(tag, ((), ""))
        added = [u for u in uses if u not in prohibited_set]
        if uses:
            prohibited_set.update(uses)
            if added:
                reasons.append(f"sheet is tagged {tag}: {', '.join(added)} prohibited ({why})")
    allowed_list = check_uses(allowed, "allowed use") if allowed is not None else list(USES)
    allowed_list = [u for u in allowed_list if u not in prohibited_set]
    return allowed_list, sorted(prohibited_set), "; ".join(reasons)


def use_permitted(allowed: Iterable[str], prohibited: Iterable[str], use: str) -> bool:
    """Gate 2: the use is allowed and not prohibited."""
    return use in set(allowed or ()) and use not in set(prohibited or ())


def passes_gates(status: str, allowed: Iterable[str], prohibited: Iterable[str], use: str) -> bool:
    """Both gates: status is ``labeled`` and the use is permitted. Every export calls this."""
    return status == "labeled" and use_permitted(allowed, prohibited, use)


def gate_failure_reason(status: str, allowed: Iterable[str], prohibited: Iterable[str], use: str) -> str | None:
    """Why a pair is excluded from `use` (None when it passes), for export summaries."""
    if status != "labeled":
        return f"status is {status}"
    if use in set(prohibited or ()):
        return f"{use} prohibited"
    if use not in set(allowed or ()):
        return f"{use} not allowed"
    return None


# --- the export gate ------------------------------------------------------------------------

DESTINATIONS: tuple[str, ...] = ("hub", "file", "training", "deployment", "support")
#: Tags whose content never leaves without an explicit, audited site policy for that destination.
RESTRICTED_TAGS: tuple[str, ...] = ("PHI", "EXPORT_CONTROLLED")
#: The settings key holding the policy (written only by `services.site.set_export_permission`).
POLICY_SETTING = "governance.export_policy"

T = TypeVar("T")


@dataclass(frozen=True)
class ExportPolicy:
    """Which restricted tags an administrator allowed to which destinations (with who, when, why)."""

    grants: tuple[Mapping[str, str], ...] = ()

    @classmethod
    def from_setting(cls, value: Any) -> ExportPolicy:
        """The policy from its stored form; anything malformed counts as no permission at all."""
        if not isinstance(value, dict) or not isinstance(value.get("allow"), list):
            return cls()
        grants = tuple(g for g in value["allow"] if isinstance(g, dict) and g.get("tag") in RESTRICTED_TAGS
                       and g.get("destination") in DESTINATIONS)
        return cls(grants)

    def to_setting(self) -> dict[str, Any]:
        return {"allow": [dict(g) for g in self.grants]}

    def allows(self, tag: str, destination: str) -> bool:
        return any(g.get("tag") == tag and g.get("destination") == destination for g in self.grants)


def check_destination(destination: str) -> str:
    from vital_desktop.core.errors import ValidationError

    if destination not in DESTINATIONS:
        raise ValidationError(f"unknown export destination {destination!r}; choose from {', '.join(DESTINATIONS)}")
    return destination


def normalise_tags(tags: Any) -> set[str]:
    """Tags from a list, a JSON text of a list, or None (what the store and Arrow hand back)."""
    if tags is None:
        return set()
    if isinstance(tags, str):
        import json

        try:
            tags = json.loads(tags) if tags.strip().startswith("[") else [t for t in tags.split(",") if t.strip()]
        except ValueError:
            return {"UNREADABLE"}  # fail closed: treated as restricted below
    if not isinstance(tags, (list, tuple, set, frozenset)):
        return {"UNREADABLE"}
    return {str(t).strip().upper() for t in tags if str(t).strip()}


@dataclass(frozen=True)
class ExportGate:
    """The decision for one export (a use, a destination, the site's policy); see the module docstring."""

    destination: str
    use: str | None
    policy: ExportPolicy = field(default_factory=ExportPolicy)

    def refusal(self, tags: Any, *, allowed: Iterable[str] | None = None,
                prohibited: Iterable[str] | None = None) -> str | None:
        """None if content with these tags (and usage constraints) may leave; else why not."""
        found = normalise_tags(tags)
        if "UNREADABLE" in found:
            return "classification tags unreadable"
        for tag in RESTRICTED_TAGS:
            if tag in found and not self.policy.allows(tag, self.destination):
                return f"tagged {tag}: no site policy allows it to leave for {self.destination}"
        if self.use is not None:
            prohibited_set = set(prohibited or ())
            if self.use in prohibited_set:
                return f"{self.use} prohibited"
            if allowed is not None and self.use not in set(allowed):
                return f"{self.use} not allowed"
        return None

    def permits(self, tags: Any, *, allowed: Iterable[str] | None = None,
                prohibited: Iterable[str] | None = None) -> bool:
        return self.refusal(tags, allowed=allowed, prohibited=prohibited) is None

    def split(self, rows: Iterable[T], *, tags: Callable[[T], Any],
              allowed: Callable[[T], Iterable[str] | None] | None = None,
              prohibited: Callable[[T], Iterable[str] | None] | None = None) -> tuple[list[T], dict[str, int]]:
        """The rows that may leave, and {reason: count} of those that may not."""
        kept: list[T] = []
        excluded: dict[str, int] = {}
        for row in rows:
            reason = self.refusal(tags(row), allowed=allowed(row) if allowed else None,
                                  prohibited=prohibited(row) if prohibited else None)
            if reason is None:
                kept.append(row)
            else:
                excluded[reason] = excluded.get(reason, 0) + 1
        return kept, excluded


def export_gate(policy: ExportPolicy, *, use: str | None, destination: str) -> ExportGate:
    """The gate for one export (services call `services.site.export_gate`, which reads the policy)."""
    if use is not None:
        [use] = check_uses([use])
    return ExportGate(check_destination(destination), use, policy)

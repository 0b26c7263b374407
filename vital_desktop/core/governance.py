"""The dual quality gates and usage constraints: the one place every export asks.

Gate 1 (quality): the pair's status is ``labeled``. Gate 2 (governance): the use is allowed
and not prohibited. A sheet's data classification tags prohibit uses of its labels and
pairs: that is how PHI keeps data out of model weights while it stays usable for testing.
"""

from __future__ import annotations

from collections.abc import Iterable

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

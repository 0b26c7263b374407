"""What a mutating service call changed, so each view refreshes only its part (Anki's OpChanges)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Changes:
    sheets: bool = False
    labels: bool = False
    templates: bool = False
    training_sheets: bool = False
    pairs: bool = False
    models: bool = False
    predictions: bool = False
    feedback: bool = False
    mc_runs: bool = False
    bundles: bool = False
    users: bool = False
    label_types: bool = False

    def __or__(self, other: Changes) -> Changes:
        return Changes(**{f.name: getattr(self, f.name) or getattr(other, f.name) for f in fields(self)})

    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

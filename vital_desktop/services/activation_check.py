"""Before a classifier replaces the one serving predictions: is it less accurate on this site's labels?

A retrained version can be worse than the one it replaces (retraining on the previous version's
corrected hard cases alone shifts the model towards them), and a model from elsewhere may not
suit this site's images at all. So activating a classifier while another one serves first runs
both on the same labelled items that neither learnt from (`training_lineage.held_out_items`, on
the sheet the new one was trained on, else the one the serving one was) and compares them item
by item. The candidate counts as worse when it is right on fewer items and the difference is
unlikely to be chance: a one-sided exact McNemar test on the items the two disagree on,
p < `WORSE_P`. `deploy.activate` refuses a worse model unless asked to activate it anyway;
DEPLOY shows the comparison in its confirmation.

When the two cannot be compared (no shared held-out items, a model that is not an image
classifier, images that cannot be read), the check says why and does not stand in the way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from vital_desktop.core.errors import VitalError
from vital_desktop.core.progress import Progress
from vital_desktop.services import registry
from vital_desktop.services.training_gate import resolve_model
from vital_desktop.services.training_lineage import lineage, predict_labelled_items
from vital_desktop.store.db import Store
from vital_desktop.store.models import ModelRow

#: The candidate is refused as worse when the one-sided McNemar p-value is below this.
WORSE_P = 0.05


@dataclass(frozen=True)
class ActivationCheck:
    """The candidate against the classifier serving now, on the same held-out labelled items."""

    candidate: str  # name@version
    active: str
    sheet: str | None
    items: int = 0
    candidate_correct: int = 0
    active_correct: int = 0
    only_candidate: int = 0  # items only the candidate got right
    only_active: int = 0
    p_worse: float | None = None  # one-sided exact McNemar p that the candidate is worse
    not_compared: str | None = None  # why no comparison was possible

    @property
    def worse(self) -> bool:
        return (self.not_compared is None and self.candidate_correct < self.active_correct
                and self.p_worse is not None and self.p_worse < WORSE_P)

    def sentence(self) -> str:
        """One line for a confirmation or a refusal."""
        if self.not_compared is not None:
            return f"{self.candidate} was not compared with {self.active}, which serves now: {self.not_compared}."
        new, old = self.candidate_correct / self.items, self.active_correct / self.items
        points = abs(new - old) * 100
        verdict = ("is less accurate than" if self.worse
                   else "is as accurate as" if self.candidate_correct == self.active_correct
                   else "is more accurate than" if new > old
                   else "is less accurate, but within chance, than")
        return (f"On {self.items} labelled items of {self.sheet!r} that neither learnt from, {self.candidate} "
                f"{verdict} {self.active}, which serves now: {new:.1%} against {old:.1%}"
                + (f" ({points:.1f} points)" if points else "")
                + f"; right where the other was wrong on {self.only_candidate} items, wrong where it was right"
                  f" on {self.only_active} (one-sided McNemar {_p_text(self.p_worse)}).")

    def to_dict(self) -> dict:
        return asdict(self) | {"worse": self.worse, "text": self.sentence()}


def _p_text(p: float | None) -> str:
    return "p < 0.001" if p is not None and p < 0.001 else f"p = {p if p is not None else 1.0:.3f}"


def mcnemar_worse_p(only_active: int, only_candidate: int) -> float:
    """One-sided exact McNemar p-value that the candidate is worse: P(X >= only_active) for
    X ~ Binomial(only_active + only_candidate, 1/2), over the items the two disagree on."""
    n = only_active + only_candidate
    return sum(math.comb(n, k) for k in range(only_active, n + 1)) / 2**n if n else 1.0


def _training_sheet(store: Store, model_id: str) -> str | None:
    sheets = [src.sheet for src in lineage(store, model=model_id).sources if src.sheet]
    return sheets[0] if sheets else None


def compare_with_active(store: Store, *, model: str, progress: Progress | None = None) -> ActivationCheck | None:
    """Compare classifier `model` with the active classifier it would replace (None when it
    would replace none, is not a classifier, or is the active one)."""
    with store.read() as s:
        row = resolve_model(s, model)
        if row.kind != registry.KIND_ONNX:
            return None
        active = s.scalar(sa.select(ModelRow).where(ModelRow.kind == row.kind,
                                                    ModelRow.status == registry.STATUS_ACTIVE))
        if active is None or active.id == row.id:
            return None
        ids, refs = (row.id, active.id), (f"{row.name}@{row.version}", f"{active.name}@{active.version}")
    sheet = _training_sheet(store, ids[0]) or _training_sheet(store, ids[1])
    if sheet is None:
        return ActivationCheck(*refs, None, not_compared="neither records the sheet it was trained on")
    try:
        run = predict_labelled_items(store, models=list(ids), sheet=sheet, progress=progress)
    except VitalError as exc:
        return ActivationCheck(*refs, sheet, not_compared=exc.message)
    new, old = run.correct(0), run.correct(1)
    only_new = sum(a and not b for a, b in zip(new, old, strict=True))
    only_old = sum(b and not a for a, b in zip(new, old, strict=True))
    return ActivationCheck(*refs, sheet, items=len(run.refs), candidate_correct=sum(new), active_correct=sum(old),
                           only_candidate=only_new, only_active=only_old, p_worse=mcnemar_worse_p(only_old, only_new))

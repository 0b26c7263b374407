"""GENERATE, improved offline: search few-shot selections and instruction variants for a template.

`optimise_template` takes a published template version and a sheet, and:

1. splits the sheet's evaluation-allowed canonical labels (see `template_eval.label_pool`) into
   a *selection* split and a *held-out* split (seeded shuffle, disjoint);
2. builds candidates: the baseline (the version as it is) first, then the other few-shot
   selections, the instruction variants, and their combinations, most different first
   (`FEW_SHOT_SELECTIONS`, `INSTRUCTION_VARIANTS`: registries, not branches). Examples come
   ONLY from labels whose constraints allow ``few_shot`` use (asked of
   the site's export gate, since examples travel with the template) and never from an item of
   either split;
3. scores each candidate on the selection split, baseline first, until the time budget or the
   candidate limit is reached (a candidate the budget cut short is dropped, never half-scored).
   All items of a candidate run back to back, so the runtime keeps the candidate's shared prompt
   start (system message and examples) in its cache after the first item;
4. keeps the best candidate only if it beats the baseline on the selection split (ties keep the
   baseline), so what is proposed never scores below the baseline on the split it was chosen
   on; both are then scored on the held-out split, and that score is reported as it is;
5. saves the winner as a new DRAFT version (the existing edit path: a minor bump of the
   newest version) with baseline and optimised scores in its notes; an engineer reviews the
   diff (`vital template diff`) and publishes it, or not.

Every candidate's score is stored in `template_optimisations.candidates`; the baseline's and
the proposal's scores on both splits are also stored as `template_evaluations` rows.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.inference import prompts
from vital_desktop.services import template_eval, templates
from vital_desktop.services.accounts import require
from vital_desktop.services.label_types import LabelType
from vital_desktop.services.template_eval import LabelledItem, TemplateScore
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import TemplateOptimisation

MAX_EXAMPLES = 4

#: Instruction variants: a sentence added to the system prompt ("" keeps it as it is).
INSTRUCTION_VARIANTS: dict[str, str] = {
    "as-is": "",
    "ground-in-record": "Base the answer only on the values in the record, read every one of them before "
                        "answering, and choose the option the values support most directly.",
    "calibrated": "If the answer has a confidence field, make it match how likely the answer is to be right: "
                  "lower it when the record is ambiguous or unusual.",
}


@dataclass(frozen=True)
class Example:
    """A few-shot example built from one canonical label (its item's record and its label)."""

    item_ref: str
    variables: dict
    output: dict

    def spec(self) -> dict:
        return {"variables": self.variables, "output": self.output}


def example_from_label(template: templates.TemplateInfo, label_type: LabelType, item: LabelledItem) -> Example | None:
    """The label as a few-shot example of `template`, or None when it does not fit the template."""
    inputs = template.input_schema.get("properties", {})
    variables = {k: v for k, v in item.data.items() if k in inputs}
    for name in prompts.placeholders(template.user_prompt):
        root = name.split(".")[0]
        if root not in variables and root in item.data:
            variables[root] = item.data[root]
        if root == "item_ref":
            variables.setdefault("item_ref", item.item_ref)
    if templates.first_error(template.input_schema, variables) is not None:
        return None
    if any(p.split(".")[0] not in variables for p in prompts.placeholders(template.user_prompt)):
        return None
    outputs = template.output_schema.get("properties", {})
    output = {k: v for k, v in templates.label_data_from_answer(label_type, item.expected).items() if k in outputs}
    if templates.first_error(template.output_schema, output) is not None:
        return None
    return Example(item.item_ref, variables, output)


def _by_class(examples: Sequence[Example], class_field: str | None) -> list[Example]:
    """One example per distinct class (in order of first appearance), up to `MAX_EXAMPLES`."""
    seen: set[str] = set()
    out = []
    for example in examples:
        key = json.dumps(example.output.get(class_field) if class_field else example.output, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(example)
        if len(out) >= MAX_EXAMPLES:
            break
    return out


#: Few-shot selections: (template, pool of allowed examples (shuffled), class field) → examples,
#: or None to keep the template's own examples.
FEW_SHOT_SELECTIONS: dict[str, Callable[[templates.TemplateInfo, list[Example], str | None], list[Example] | None]] = {
    "template's own": lambda template, pool, class_field: None,
    "one per class": lambda template, pool, class_field: _by_class(pool, class_field),
    "two examples": lambda template, pool, class_field: list(pool[:2]),
    "no examples": lambda template, pool, class_field: [],
}


@dataclass
class Candidate:
    name: str
    selection: str
    instruction: str
    template: templates.TemplateInfo
    examples: list[str]  # item refs of the labels used as examples ("template" for the template's own)
    score: TemplateScore | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "few_shot": self.selection, "instruction": self.instruction,
                "examples": self.examples, "selection_score": self.score.summary() if self.score else None,
                "note": self.note}


def build_candidates(base: templates.TemplateInfo, label_type: LabelType, few_shot_pool: Sequence[LabelledItem],
                     *, seed: int, limit: int) -> list[Candidate]:
    """The baseline, then up to `limit` distinct variants (see the module docstring)."""
    rng = random.Random(seed)
    pool_items = list(few_shot_pool)
    rng.shuffle(pool_items)
    examples = [e for e in (example_from_label(base, label_type, item) for item in pool_items) if e is not None]
    candidates = [Candidate("baseline", "template's own", "as-is", base, ["template"])]
    seen = {_key(base)}
    chosen = {selection: choose(base, examples, label_type.class_field) for selection, choose in FEW_SHOT_SELECTIONS.items()}
    # The most different candidates first (the budget may stop the search early): each other
    # few-shot selection as it is, then each instruction variant, then the combinations.
    plain = [(selection, "as-is") for selection in FEW_SHOT_SELECTIONS]
    worded = [("template's own", instruction) for instruction in INSTRUCTION_VARIANTS]
    combined = [(selection, instruction) for selection in FEW_SHOT_SELECTIONS for instruction in INSTRUCTION_VARIANTS]
    for selection, instruction in plain + worded + combined:
        if len(candidates) > limit:
            break
        picked = chosen[selection]
        sentence = INSTRUCTION_VARIANTS[instruction]
        few_shot = base.few_shot if picked is None else [e.spec() for e in picked]
        system = base.system_prompt if not sentence else base.system_prompt.rstrip() + "\n\n" + sentence
        variant = dataclasses.replace(base, few_shot=list(few_shot), system_prompt=system)
        if _key(variant) in seen:
            continue
        seen.add(_key(variant))
        refs = ["template"] if picked is None else [e.item_ref for e in picked]
        candidates.append(Candidate(f"{selection} + {instruction}", selection, instruction, variant, refs))
    return candidates


def _key(template: templates.TemplateInfo) -> str:
    return json.dumps([template.system_prompt, template.few_shot], sort_keys=True, default=str)


def make_splits(items: Sequence[LabelledItem], per_split: int, seed: int) -> tuple[list[LabelledItem], list[LabelledItem]]:
    """Disjoint selection and held-out splits of `per_split` items each (halves when fewer)."""
    if len(items) < 2:
        raise ValidationError(f"optimisation needs at least 2 evaluation-allowed labels (one per split); "
                              f"the sheet has {len(items)}")
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    n = max(1, min(int(per_split), len(shuffled) // 2))
    return shuffled[:n], shuffled[n:2 * n]


@dataclass(frozen=True)
class OptimisationResult:
    id: str
    base_ref: str
    proposed_ref: str | None
    status: str  # proposed | no_improvement
    sheet_name: str
    baseline: dict  # {"selection": score, "held_out": score}
    optimised: dict
    candidates: list[dict]
    budget_seconds: float
    seconds: float
    diff: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        def line(label: str, score: dict | None) -> str:
            if not score:
                return f"  {label:22s} -"
            ece = "n/a" if score.get("ece") is None else f"{score['ece']:.3f}"
            fields = ", ".join(f"{k} {template_eval._pct(v)}" for k, v in (score.get("field_accuracy") or {}).items())
            return (f"  {label:22s} accuracy {template_eval._pct(score.get('accuracy'))}  valid "
                    f"{template_eval._pct(score.get('schema_valid_rate'))}  ECE {ece}  ({fields}; "
                    f"{score.get('items')} items)")

        lines = [f"optimised {self.base_ref} on {self.sheet_name!r}: {len(self.candidates)} candidates in "
                 f"{self.seconds:.0f} s (budget {self.budget_seconds:.0f} s)",
                 line("baseline, selection", self.baseline.get("selection")),
                 line("optimised, selection", self.optimised.get("selection")),
                 line("baseline, held-out", self.baseline.get("held_out")),
                 line("optimised, held-out", self.optimised.get("held_out"))]
        if self.proposed_ref:
            lines.append(f"proposed {self.proposed_ref} (draft: review it with `vital template diff {self.base_ref} "
                         f"{self.proposed_ref}` and publish it, or not)")
        else:
            lines.append("no candidate beat the baseline on the selection split; nothing proposed")
        return "\n".join(lines)


def optimise_template(
    store: Store, *, actor: User, template: str, sheet: str, budget_seconds: float = 300.0, split_items: int = 6,
    max_candidates: int = 6, seed: int = 0, ai_mode: str | None = None, progress: Progress | None = None,
    prelabeler_factory: template_eval.PrelabelerFactory | None = None,
) -> tuple[OptimisationResult, Changes]:
    """Search for a better version of `template` on `sheet` (see the module docstring)."""
    require(actor, "edit_template")
    progress = progress or Progress()
    if not budget_seconds or budget_seconds <= 0:
        raise ValidationError("--budget must be a positive number of seconds")
    if split_items < 1 or max_candidates < 1:
        raise ValidationError("--items and --candidates must be positive")
    started = time.perf_counter()
    deadline = time.monotonic() + float(budget_seconds)
    with store.read() as s:
        base = templates._info(templates.resolve(s, template))
    if base.status != "published":
        raise ValidationError(f"{base.ref} is a draft: optimise a published version (drafts change in place)")
    label_type = templates.template_label_type(store, base)
    pool = template_eval.label_pool(store, sheet=sheet, label_type=base.label_type)
    selection, held_out = make_splits(pool.evaluation, split_items, seed)
    in_splits = {i.item_ref for i in selection} | {i.item_ref for i in held_out}
    few_shot_pool = [i for i in pool.few_shot if i.item_ref not in in_splits]
    candidates = build_candidates(base, label_type, few_shot_pool, seed=seed, limit=max_candidates)
    factory = prelabeler_factory or (lambda st, t: template_eval.make_prelabeler(st, t, ai_mode))

    total = len(selection) * len(candidates) + 2 * len(held_out)
    progress.start(total, f"optimising {base.ref}: {len(candidates)} candidates × {len(selection)} items")
    done = 0

    def run(candidate: Candidate, items: list[LabelledItem], until: float | None) -> TemplateScore | None:
        try:
            prelabeler = factory(store, candidate.template)
            return template_eval.score_template(store, candidate.template, items, label_type=label_type,
                                                prelabeler=prelabeler, progress=progress, deadline=until)
        except ValidationError as exc:  # e.g. the examples make the prompt too long for the model
            candidate.note = exc.message
            return None

    for index, candidate in enumerate(candidates):
        progress.set(done, f"candidate {index + 1}/{len(candidates)}: {candidate.name}")
        candidate.score = run(candidate, selection, None if index == 0 else deadline)
        done += len(selection)
        if candidate.score is None and index == 0:
            raise ValidationError(f"the baseline {base.ref} could not be scored: {candidate.note}")
        if candidate.score is None and not candidate.note:
            for later in candidates[index:]:
                later.note = "not scored: the time budget ran out"
            total -= len(selection) * (len(candidates) - index - 1)
            progress.start(total, "time budget reached")
            progress.set(done)
            break
    scored = [c for c in candidates if c.score is not None]
    baseline = candidates[0]
    best = baseline
    for candidate in scored[1:]:
        assert candidate.score is not None and best.score is not None
        if candidate.score.objective > best.score.objective:
            best = candidate
    progress.set(done, "scoring the baseline on the held-out split")
    baseline_held = run(baseline, held_out, None)
    done += len(held_out)
    best_held = baseline_held
    if best is not baseline:
        progress.set(done, "scoring the proposal on the held-out split")
        best_held = run(best, held_out, None)
    assert baseline.score is not None and best.score is not None
    scores: dict[str, dict] = {"baseline": {"selection": baseline.score.summary(),
                           "held_out": baseline_held.summary() if baseline_held else None},
              "optimised": {"selection": best.score.summary(), "held_out": best_held.summary() if best_held else None,
                            "candidate": best.name}}
    proposed: templates.TemplateInfo | None = None
    diff: dict = {}
    if best is not baseline:
        note = _notes(base, best, scores)
        proposed, _ = templates.edit_template(
            store, actor=actor, ref=base.ref, bump="minor",
            changes={"few_shot": best.template.few_shot, "system_prompt": best.template.system_prompt, "notes": note})
        diff = templates.diff(store, base.ref, proposed.ref).to_dict()
    model = template_eval.model_label(store, base)
    seconds = time.perf_counter() - started
    with store.session() as s:
        row = TemplateOptimisation(
            id=new_id(), template_name=base.name, base_version=base.version,
            proposed_version=proposed.version if proposed else None, sheet_id=pool.sheet_id, sheet_name=pool.sheet_name,
            status="proposed" if proposed else "no_improvement", baseline=scores["baseline"],
            optimised=scores["optimised"], candidates=[c.to_dict() for c in candidates],
            budget_seconds=float(budget_seconds), seconds=seconds, created_by=actor.username, created_at=utcnow())
        s.add(row)
        extra = {"optimisation_id": row.id, "seed": seed}
        template_eval.record_evaluation(s, actor, base, pool, baseline.score, purpose="optimise-selection", model=model,
                                        extra=extra)
        if baseline_held is not None:
            template_eval.record_evaluation(s, actor, base, pool, baseline_held, purpose="optimise-heldout",
                                            model=model, extra=extra)
        if proposed is not None:
            template_eval.record_evaluation(s, actor, proposed, pool, best.score, purpose="optimise-selection",
                                            model=model, extra=extra)
            if best_held is not None:
                template_eval.record_evaluation(s, actor, proposed, pool, best_held, purpose="optimise-heldout",
                                                model=model, extra=extra)
        audit.record(s, actor, "template.optimise", base.ref,
                     {"sheet": pool.sheet_name, "proposed": proposed.ref if proposed else None,
                      "candidates": len(scored), "baseline": scores["baseline"]["selection"]["accuracy"],
                      "optimised": scores["optimised"]["selection"]["accuracy"]})
        result = OptimisationResult(row.id, base.ref, proposed.ref if proposed else None, row.status, pool.sheet_name,
                                    scores["baseline"], scores["optimised"], [c.to_dict() for c in candidates],
                                    float(budget_seconds), seconds, diff)
    progress.finish("proposed " + proposed.ref if proposed else "no improvement over the baseline")
    return result, Changes(templates=True)


def _notes(base: templates.TemplateInfo, best: Candidate, scores: dict) -> str:
    def pct(score: dict | None) -> str:
        return "n/a" if not score else template_eval._pct(score.get("accuracy"))

    text = (f"Proposed by optimisation of {base.ref} ({best.name}): accuracy on the selection split "
            f"{pct(scores['baseline']['selection'])} -> {pct(scores['optimised']['selection'])}; held-out "
            f"{pct(scores['baseline']['held_out'])} -> {pct(scores['optimised']['held_out'])}.")
    return (base.notes.rstrip() + "\n\n" + text) if base.notes.strip() else text


def list_optimisations(store: Store, *, template: str | None = None) -> list[dict]:
    """Stored optimisation runs, newest first."""
    import sqlalchemy as sa

    with store.read() as s:
        query = sa.select(TemplateOptimisation).order_by(TemplateOptimisation.created_at.desc())
        if template:
            query = query.where(TemplateOptimisation.template_name == templates.split_ref(template)[0])
        return [{"id": r.id, "template": r.template_name, "base_version": r.base_version,
                 "proposed_version": r.proposed_version, "sheet": r.sheet_name, "status": r.status,
                 "baseline": r.baseline, "optimised": r.optimised, "seconds": r.seconds,
                 "created_at": str(r.created_at)} for r in s.scalars(query)]

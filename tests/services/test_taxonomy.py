"""Taxonomy evolution: every verb previews, then applies in one transaction with history and
audit rows; relabels go through the one write path; split/deprecate flag labels for review."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.services import generate, label_type_edits, label_types, labels, taxonomy, templates
from vital_desktop.store.models import AuditEntry, CanonicalLabelHistory, LabelTypeChange

CLASSES = ["pore", "crack", "spatter"]


@pytest.fixture
def welds(small_site):
    """A site label type `welds` (class field `class`) and six labels of it."""
    store, engineer, inspector = small_site.store, small_site.user("engineer"), small_site.user("inspector")
    label_type_edits.create_label_type(store, engineer, {"name": "welds", "classes": CLASSES})
    for i, cls in enumerate(["pore", "crack", "crack", "spatter", "pore", "crack"]):
        labels.set_label(store, actor=inspector, sheet="Crystals", item_ref=f"INS-{i:04d}", label_type="welds",
                         label_data={"class": cls})
    return small_site


def _label(site, item: str) -> labels.LabelInfo:
    return labels.get_label(site.store, sheet="Crystals", item_ref=item, label_type="welds")


def _audit_actions(store) -> list[str]:
    with store.read() as s:
        return list(s.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)))


def test_rename_previews_then_relabels_with_history_and_audit(welds) -> None:
    store, engineer = welds.store, welds.user("engineer")
    before = snapshot_tables(store)
    impact = taxonomy.preview(store, "welds", "rename_class", old="crack", new="fissure")
    assert (impact.labels_changed, impact.from_version, impact.to_version) == (3, "1.0.0", "2.0.0")
    assert snapshot_tables(store) == before  # a preview writes nothing
    result, changes = taxonomy.apply(store, engineer, "welds", "rename_class", old="crack", new="fissure")
    assert result.applied and result.labels_changed == 3 and changes.labels and changes.label_types
    renamed = _label(welds, "INS-0001")
    assert renamed.label_data == {"class": "fissure"} and renamed.version == 2
    assert _label(welds, "INS-0000").version == 1  # a pore label is untouched
    history = labels.history(store, sheet="Crystals", item_ref="INS-0001", label_type="welds")
    assert history[-1].action == "taxonomy" and "class renamed" in history[-1].reason
    with store.read() as s:
        assert s.scalar(sa.select(CanonicalLabelHistory.label_type_version).where(
            CanonicalLabelHistory.item_ref == "INS-0001", CanonicalLabelHistory.version == 2)) == "2.0.0"
        change = s.scalars(sa.select(LabelTypeChange).where(LabelTypeChange.action == "rename_class")).one()
    assert (change.from_version, change.to_version, change.labels_changed) == ("1.0.0", "2.0.0", 3)
    assert "label_type.rename_class" in _audit_actions(store)
    current = label_types.get_label_type(store, "welds")
    assert current.classes() == ["pore", "fissure", "spatter"] and current.version == "2.0.0"
    assert label_types.get_label_type(store, "welds", "1.0.0").classes() == CLASSES  # old version immutable
    diff = label_type_edits.diff_versions(store, "welds")
    assert {"field": "classes", "change": "added", "class": "fissure"} in diff["changes"]


def test_merge_add_split_and_deprecate(welds) -> None:
    store, engineer = welds.store, welds.user("engineer")
    merged, _ = taxonomy.apply(store, engineer, "welds", "merge_classes", sources=["pore", "spatter"], into="void")
    assert merged.labels_changed == 3 and label_types.get_label_type(store, "welds").classes() == ["void", "crack"]
    assert _label(welds, "INS-0003").label_data == {"class": "void"}
    added, _ = taxonomy.apply(store, engineer, "welds", "add_class", name="undercut", color="#123456")
    assert added.to_version == "2.1.0" and added.labels_changed == 0

    split, _ = taxonomy.apply(store, engineer, "welds", "split_class", name="crack", into=["toe_crack", "root_crack"])
    assert split.labels_flagged == 3 and split.labels_changed == 0
    crack = _label(welds, "INS-0001")
    assert crack.label_data == {"class": "crack"} and crack.review_state == "review"  # kept, never guessed
    assert {r["item_ref"] for r in taxonomy.flagged_labels(store, "welds")} == {"INS-0001", "INS-0002", "INS-0005"}
    current = label_types.get_label_type(store, "welds")
    assert current.classes() == ["void", "toe_crack", "root_crack", "undercut"] and "crack" in current.all_classes()
    # A reviewer resolving the flag saves a new version: the flag clears.
    labels.set_label(store, actor=welds.user("engineer"), sheet="Crystals", item_ref="INS-0001", label_type="welds",
                     label_data={"class": "toe_crack"}, expected_version=1)
    assert _label(welds, "INS-0001").review_state == "ok"

    deprecated, _ = taxonomy.apply(store, engineer, "welds", "deprecate_class", name="void")
    assert deprecated.labels_flagged == 3
    with pytest.raises(ValidationError, match="deprecated classes take no new labels: void, crack"):
        labels.set_label(store, actor=welds.user("inspector"), sheet="Crystals", item_ref="INS-0009",
                         label_type="welds", label_data={"class": "void"})
    actions = [h["action"] for h in label_type_edits.history(store, "welds")]
    assert actions == ["create", "merge_classes", "add_class", "split_class", "deprecate_class"]
    audit = _audit_actions(store)
    for action in ("merge_classes", "add_class", "split_class", "deprecate_class"):
        assert f"label_type.{action}" in audit


@pytest.mark.parametrize(("action", "args", "message"), [
    ("rename_class", {"old": "crack", "new": "pore"}, "already has a class 'pore'"),
    ("rename_class", {"old": "nope", "new": "x"}, "has no class 'nope'"),
    ("rename_class", {"old": "crack", "new": " "}, "cannot be empty"),
    ("add_class", {"name": "crack"}, "already has a class 'crack'"),
    ("split_class", {"name": "crack", "into": ["only_one"]}, "at least two"),
    ("merge_classes", {"sources": ["crack"], "into": "crack"}, "into itself"),
])
def test_bad_evolutions_are_refused_and_the_store_is_unchanged(welds, action, args, message) -> None:
    before = snapshot_tables(welds.store)
    with pytest.raises(ValidationError, match=message):
        taxonomy.apply(welds.store, welds.user("engineer"), "welds", action, **args)
    assert snapshot_tables(welds.store) == before


def test_a_template_made_for_an_older_version_is_refused_naming_both(welds) -> None:
    store, engineer = welds.store, welds.user("engineer")
    spec = {"name": "Weld check", "label_type": "welds", "system_prompt": "You classify welds.",
            "user_prompt": "Classify {{image_path}}.",
            "input_schema": {"type": "object", "properties": {"image_path": {"type": "string"}}},
            "output_schema": {"type": "object", "required": ["class"],
                              "properties": {"class": {"type": "string", "enum": CLASSES}}}}
    info, _ = templates.create_template(store, actor=engineer, spec=spec)
    assert info.label_type_version == "1.0.0"
    templates.publish_template(store, actor=engineer, ref="Weld check")
    taxonomy.apply(store, engineer, "welds", "rename_class", old="crack", new="fissure")
    with pytest.raises(ValidationError, match=r"made for label type welds@1\.0\.0.*now welds@2\.0\.0"):
        generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Weld check",
                                         name="weld sheet")
    assert not generate.list_training_sheets(store)
    assert taxonomy.version_note(store, "welds", "1.0.0") == "trained on welds@1.0.0; the label type is now welds@2.0.0"

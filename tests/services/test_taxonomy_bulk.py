"""Taxonomy rename/merge through the write path's bulk relabel: every rule kept (claims, history,
contiguous versions, constraints re-derived where the sheet's classification changed)."""

from __future__ import annotations

import pytest

from tests.conftest import snapshot_tables
from tests.services.test_taxonomy import _label, welds  # noqa: F401 - the fixture
from vital_desktop.core.errors import ConflictError
from vital_desktop.services import label_claims, labels, taxonomy
from vital_desktop.store.bulk import raw_connection


def test_another_users_claim_refuses_the_whole_rename(welds) -> None:  # noqa: F811
    store = welds.store
    label_claims.claim_items(store, actor=welds.user("inspector2"), sheet="Crystals", label_type="welds",
                             item_refs=["INS-0002"])
    before = snapshot_tables(store)
    with pytest.raises(ConflictError, match="INS-0002.*claimed by inspector2"):
        taxonomy.apply(store, welds.user("engineer"), "welds", "rename_class", old="crack", new="fissure")
    assert snapshot_tables(store) == before


def test_bulk_rename_writes_one_history_row_per_label_and_releases_own_claims(welds) -> None:  # noqa: F811
    store, engineer = welds.store, welds.user("engineer")
    label_claims.claim_items(store, actor=engineer, sheet="Crystals", label_type="welds", item_refs=["INS-0001"])
    result, _ = taxonomy.apply(store, engineer, "welds", "merge_classes", sources=["crack", "spatter"], into="defect")
    assert result.labels_changed == 4
    for ref in ("INS-0001", "INS-0002", "INS-0003", "INS-0005"):
        label = _label(welds, ref)
        history = labels.history(store, sheet="Crystals", item_ref=ref, label_type="welds")
        assert (label.label_data, label.version, label.updated_by) == ({"class": "defect"}, 2, "engineer")
        assert [h.version for h in history] == [1, 2] and history[-1].action == "taxonomy"
        assert history[-1].label_data == {"class": "defect"} and "classes merged" in history[-1].reason
    assert _label(welds, "INS-0000").version == 1
    assert label_claims.list_claims(store, sheet="Crystals", label_type="welds") == []


def test_labels_of_a_sheet_whose_classification_changed_take_the_record_path(welds) -> None:  # noqa: F811
    store = welds.store
    with store.session() as s:  # the sheet became PHI after its labels were made
        raw_connection(s).execute("UPDATE sheets SET classification = '[\"PHI\"]' WHERE name = 'Crystals'")
    result, _ = taxonomy.apply(store, welds.user("engineer"), "welds", "rename_class", old="crack", new="fissure")
    assert result.labels_changed == 3
    label = _label(welds, "INS-0001")
    assert label.label_data == {"class": "fissure"} and label.version == 2
    assert "PHI" in label.data_classification and "training" in label.prohibited_uses  # tightened, as decided

"""Hub label bundles go through the one write path: a hub row that keeps the label data but lifts
a usage restriction is a conflict (never a silent relaxation), and claims hold against it."""

from __future__ import annotations

import sqlalchemy as sa

from vital_desktop.services import labels
from vital_desktop.store.models import CanonicalLabel, LabelConflict


def test_hub_bundle_dropping_a_prohibited_use_is_a_conflict_with_the_same_data(bundle_site):
    engineer = bundle_site.small.user("engineer")
    labels.set_label(bundle_site.store, actor=engineer, sheet="Crystals", item_ref="INS-0002",
                     label_type="classification", label_data={"defect_type": "crack"},
                     prohibited_uses=["training"], usage_reason="export-controlled serial visible")
    rows = [{"sheet_name": "Crystals", "item_ref": "INS-0002", "label_data": {"defect_type": "crack"},
             "allowed_uses": ["training", "validation"], "prohibited_uses": []}]
    result = bundle_site.import_(bundle_site.hub.build("labels", bundle_site.hub.labels_payload(rows)).path)
    assert result.summary["conflicts"] == 1 and result.summary["updated"] == 0
    with bundle_site.store.read() as s:
        local = s.scalar(sa.select(CanonicalLabel).where(CanonicalLabel.item_ref == "INS-0002"))
        conflict = s.scalar(sa.select(LabelConflict).where(LabelConflict.item_ref == "INS-0002"))
    assert local.prohibited_uses == ["training"] and "training" not in local.allowed_uses and local.version == 1
    assert (conflict.kind, conflict.origin) == ("relaxation", "hub")
    assert conflict.proposed_prohibited_uses == [] and conflict.proposed_data == {"defect_type": "crack"}


def test_hub_bundle_tightening_a_restriction_applies(bundle_site):
    engineer = bundle_site.small.user("engineer")
    labels.set_label(bundle_site.store, actor=engineer, sheet="Crystals", item_ref="INS-0003",
                     label_type="classification", label_data={"defect_type": "none"})
    rows = [{"sheet_name": "Crystals", "item_ref": "INS-0003", "label_data": {"defect_type": "none"},
             "allowed_uses": ["testing"], "prohibited_uses": ["training"]}]
    result = bundle_site.import_(bundle_site.hub.build("labels", bundle_site.hub.labels_payload(rows)).path)
    assert result.summary["updated"] == 1 and result.summary["conflicts"] == 0
    label = labels.get_label(bundle_site.store, sheet="Crystals", item_ref="INS-0003", label_type="classification")
    assert label.prohibited_uses == ["training"] and label.allowed_uses == ["testing"] and label.origin == "hub"

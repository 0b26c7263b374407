"""No label type is assumed: TRAIN and MONITOR verbs resolve it from the sheet or the model."""

from __future__ import annotations

import pytest

from vital_desktop.core.errors import ValidationError
from vital_desktop.services import labels
from vital_desktop.services.training_gate import resolve_label_type


def _label(site, ref: str, label_type: str, data: dict) -> None:
    labels.set_label(site.store, actor=site.user("engineer"), sheet=site.sheet, item_ref=ref, label_type=label_type,
                     label_data=data)


def test_the_sheets_only_classification_type_is_used_and_several_are_named(small_site):
    store, sheet = small_site.store, small_site.sheet
    # No labels yet and the site has several classification types: refused, naming them.
    with pytest.raises(ValidationError, match="classification label types") as refused:
        resolve_label_type(store, sheet=sheet)
    assert {"severity", "root_cause"} <= set(refused.value.details["choices"])
    _label(small_site, "INS-0001", "severity", {"severity": "minor"})
    _label(small_site, "INS-0002", "localization", {"boxes": []})  # not a classification type: ignored
    assert resolve_label_type(store, sheet=sheet) == "severity"
    assert resolve_label_type(store, sheet=sheet, label_type="root_cause") == "root_cause"  # given wins
    _label(small_site, "INS-0003", "maintenance", {"action": "service"})
    with pytest.raises(ValidationError, match=r"2 classification label types \(maintenance, severity\)"):
        resolve_label_type(store, sheet=sheet)

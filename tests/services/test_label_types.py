"""Label types: classes, colours, shortcuts and validation through services/label_types."""

from __future__ import annotations

import pytest

from vital_desktop.core.errors import ValidationError
from vital_desktop.services import label_types, labels


def test_old_names_are_re_exported_from_labels() -> None:
    assert labels.get_label_type is label_types.get_label_type
    assert labels.LabelType is label_types.LabelType


def test_demo_classification_type_has_ordered_classes_with_colours() -> None:
    lt = label_types.get_label_type(None, "classification")
    assert lt.classes()[0] == "inclusion" and "none" in lt.classes()
    colors = lt.colors()
    assert set(colors) == set(lt.classes()) and all(c.startswith("#") and len(c) == 7 for c in colors.values())
    assert lt.kind == "classification" and lt.ref == "classification@1.0.0"
    assert [a.name for a in lt.attributes] == ["severity"] and lt.attributes[0].type == "choice"
    assert label_types.get_label_type(None, "localization").kind == "boxes"


def test_bad_label_data_is_refused_with_the_place_named() -> None:
    with pytest.raises(ValidationError, match="defect_type"):
        label_types.validate_label_data(None, "classification", {"defect_type": "nonsense"})
    with pytest.raises(ValidationError, match="unknown label type 'nope'"):
        label_types.get_label_type(None, "nope")

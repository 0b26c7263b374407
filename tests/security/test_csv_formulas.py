"""CSV label exports escape cells a spreadsheet would run as formulas."""

from __future__ import annotations

import csv

import pytest

from vital_desktop.services import labels


@pytest.mark.parametrize("notes", ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_characters_at_cell_start_are_escaped(small_site, tmp_path, notes: str) -> None:
    labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Crystals", item_ref="INS-0001",
                     label_type="classification", label_data={"defect_type": "crack"}, notes=notes)
    out = tmp_path / "labels.csv"
    labels.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt="csv", use="testing")
    with open(out, newline="", encoding="utf-8") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["notes"] == "'" + notes
    assert row["label_data"].startswith("{")  # ordinary cells untouched

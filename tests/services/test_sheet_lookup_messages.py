"""Every verb that takes a sheet name refuses an unknown one the same way: naming it and the sheets there."""

from __future__ import annotations

import pytest

from vital_desktop.core.errors import NotFoundError
from vital_desktop.services import generate_sheets, item_text, label_queries, predict, template_eval


def _in_session(site, fn):
    with site.store.read() as session:
        return fn(session)


@pytest.mark.parametrize("call", [
    lambda site: predict._sheet_targets(site.store, "Crystalz", None),  # what `vital predict --sheet` looks up
    lambda site: item_text.item_content(site.store, "Crystalz", "anything"),
    lambda site: generate_sheets.list_training_sheets(site.store, sheet="Crystalz"),
    lambda site: template_eval.label_pool(site.store, sheet="Crystalz", label_type="classification"),
    lambda site: _in_session(site, lambda s: label_queries.sheet_row(s, "Crystalz")),
], ids=["predict", "item_content", "training_sheets", "label_pool", "label_queries"])
def test_an_unknown_sheet_is_refused_with_the_sheets_that_exist(small_site, call):
    with pytest.raises(NotFoundError) as refused:
        call(small_site)
    assert refused.value.message == "no sheet named 'Crystalz'; sheets here: Crystals"

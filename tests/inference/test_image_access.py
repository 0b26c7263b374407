"""The image-access guard: a changed file or a link out of the image root is refused at predict time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.services import predict, registry, sheets
from vital_desktop.services.image_access import check_image, check_item, root_of
from vital_desktop.store.models import Prediction


def _item(site, ref: str):
    (item,) = sheets.list_items(site.store, site.sheet, item_refs=[ref])
    return item


def test_an_unchanged_item_passes_and_a_changed_one_is_named(small_site):
    item = _item(small_site, "INS-0003")
    assert check_item(item).ok
    assert root_of(item.absolute_image_path, item.image_path) == str(small_site.images)
    Image.new("L", (32, 32), color=200).save(item.absolute_image_path)  # new content, same name
    access = check_item(item)
    assert not access.ok and "INS-0003" in access.problem and "changed since the sheet was indexed" in access.problem


def test_a_link_out_of_the_image_root_is_refused_wherever_it_points(small_site, tmp_path):
    item = _item(small_site, "INS-0004")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(Path(item.absolute_image_path).read_bytes())  # even the very same bytes
    os.remove(item.absolute_image_path)
    os.symlink(outside, item.absolute_image_path)
    access = check_item(item)
    assert not access.ok and "link out of the sheet's image root" in access.problem
    assert "leaves the sheet's image root" in check_image(str(small_site.images), "../x.png", None).problem
    os.remove(item.absolute_image_path)
    assert "missing" in check_item(item).problem


def test_predict_refuses_changed_and_escaping_items_by_name(small_site, model_file, tmp_path):
    engineer, inspector = small_site.user("engineer"), small_site.user("inspector")
    registry.register_model(small_site.store, actor=engineer, path=model_file, kind="onnx_classifier", name="m")
    registry.activate_model(small_site.store, actor=engineer, ref="m")
    changed, linked = _item(small_site, "INS-0001"), _item(small_site, "INS-0002")
    Image.new("L", (32, 32), color=3).save(changed.absolute_image_path)
    os.remove(linked.absolute_image_path)
    os.symlink(tmp_path / "anywhere.png", linked.absolute_image_path)

    results, _ = predict.predict_images(small_site.store, actor=inspector, sheet=small_site.sheet)
    by_ref = {r.item_ref: r for r in results}
    assert len(results) == 12
    assert by_ref["INS-0001"].predicted_class is None and "changed since" in by_ref["INS-0001"].error
    assert by_ref["INS-0002"].predicted_class is None and "link out" in by_ref["INS-0002"].error
    assert by_ref["INS-0005"].predicted_class is not None and by_ref["INS-0005"].error is None
    with small_site.store.read() as s:
        logged = {p.item_ref: p for p in s.scalars(sa.select(Prediction))}
    assert "changed since" in logged["INS-0001"].output["error"] and logged["INS-0005"].predicted_class

    # Only refused items asked for: a clear error, nothing logged.
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="INS-0001.*changed since"):
        predict.predict_images(small_site.store, actor=inspector, sheet=small_site.sheet, item_refs=["INS-0001"])
    assert snapshot_tables(small_site.store) == before

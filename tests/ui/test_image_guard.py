"""The labeling tool's image loading goes through the image-access guard (real Qt, offscreen)."""

from __future__ import annotations

from PIL import Image

from vital_desktop.services import sheets
from vital_desktop.ui.images import ImageCache
from vital_desktop.ui.workers import JobRunner


def test_a_changed_image_is_not_shown_and_says_why(qtbot, small_site):
    jobs = JobRunner()
    cache = ImageCache(jobs)
    good, changed = sheets.list_items(small_site.store, small_site.sheet, item_refs=["INS-0001", "INS-0002"])
    Image.new("L", (32, 32), color=250).save(changed.absolute_image_path)
    for item in (good, changed):
        cache.expect(item)
    assert cache.image_now(good.absolute_image_path) is not None
    assert cache.image_now(changed.absolute_image_path) is None
    assert "INS-0002" in cache.refused[changed.absolute_image_path]
    assert "changed since the sheet was indexed" in cache.refused[changed.absolute_image_path]
    assert jobs.wait()

"""DATA stage: sheet import, and every bad input refused with the store unchanged."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import snapshot_tables, write_small_dataset
from vital_desktop.core.errors import ConflictError, PermissionDenied, ValidationError
from vital_desktop.services import sheets


def test_import_indexes_items_hashes_files_and_reports_missing(small_site, tmp_path: Path) -> None:
    images, metadata = write_small_dataset(tmp_path / "second", n=6, missing=(2, 4))
    report, changes = sheets.import_sheet(
        small_site.store, actor=small_site.user("engineer"), name="Second", metadata_path=metadata,
        key_column="inspection_id", image_root=images, image_column="image_path", classification="phi, PII")
    assert changes.sheets
    assert report.items == 6
    assert sorted(report.missing) == ["INS-0002", "INS-0004"]
    info = sheets.get_sheet(small_site.store, "Second")
    assert info.classification == ["PHI", "PII"] and info.missing_count == 2
    items = sheets.list_items(small_site.store, "Second", limit=None)
    assert [i.item_ref for i in items] == [f"INS-{i:04d}" for i in range(6)]
    first = items[0]
    assert first.image_path == "IMG_0000.png" and not first.missing
    assert first.file_sha256 == sheets.sha256_file(images / "IMG_0000.png")
    assert first.metadata["crystal_batch_id"] == "XL-0" and first.metadata["temperature_c"] == 20.0
    assert items[2].missing and items[2].file_sha256 is None
    # Images are referenced, never copied into the site folder.
    assert not list(small_site.home.rglob("IMG_0000.png"))


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _bad_inputs(tmp_path: Path, images: Path) -> dict:
    dup = _write_csv(tmp_path / "dup.csv", [{"id": "A", "img": "IMG_0000.png"}, {"id": "A", "img": "IMG_0001.png"}])
    escape = _write_csv(tmp_path / "escape.csv", [{"id": "A", "img": "IMG_0000.png"}, {"id": "B", "img": "../secret.png"},
                                                   {"id": "C", "img": "/etc/passwd"}, {"id": "D", "img": "C:\\x.png"}])
    ok = _write_csv(tmp_path / "ok.csv", [{"id": "A", "img": "IMG_0000.png"}])
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"\x00not parquet at all")
    return {
        "duplicate keys": (dict(metadata_path=dup, key_column="id", image_column="img"), "duplicate values: A"),
        "unknown key column": (dict(metadata_path=ok, key_column="nope", image_column="img"), "key column 'nope'"),
        "unknown image column": (dict(metadata_path=ok, key_column="id", image_column="nope"), "image column 'nope'"),
        "unreadable file": (dict(metadata_path=garbage, key_column="id", image_column="img"), "cannot read"),
        "missing file": (dict(metadata_path=tmp_path / "none.csv", key_column="id"), "does not exist"),
        "escaping paths": (dict(metadata_path=escape, key_column="id", image_column="img"), "escape"),
        "bad tag": (dict(metadata_path=ok, key_column="id", image_column="img", classification="SECRETISH"),
                    "unknown classification"),
    }


@pytest.mark.parametrize("case", ["duplicate keys", "unknown key column", "unknown image column", "unreadable file",
                                  "missing file", "escaping paths", "bad tag"])
def test_bad_input_is_refused_and_the_store_is_unchanged(small_site, tmp_path: Path, case: str) -> None:
    kwargs, message = _bad_inputs(tmp_path, small_site.images)[case]
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=message):
        sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Bad",
                            image_root=small_site.images, **kwargs)
    assert snapshot_tables(small_site.store) == before


def test_duplicate_sheet_name_and_inspector_role_are_refused(small_site) -> None:
    before = snapshot_tables(small_site.store)
    with pytest.raises(ConflictError):
        sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Crystals",
                            metadata_path=small_site.metadata, key_column="inspection_id")
    with pytest.raises(PermissionDenied):
        sheets.import_sheet(small_site.store, actor=small_site.user("inspector"), name="Other",
                            metadata_path=small_site.metadata, key_column="inspection_id")
    assert snapshot_tables(small_site.store) == before


def test_relocate_checks_every_image_before_pointing_the_sheet_elsewhere(small_site, tmp_path: Path) -> None:
    import shutil

    moved = tmp_path / "usb" / "images"
    shutil.copytree(small_site.images, moved)
    report, _ = sheets.relocate_sheet(small_site.store, actor=small_site.user("engineer"), sheet="Crystals",
                                      image_root=moved)
    assert report.checked == 12 and sheets.get_sheet(small_site.store, "Crystals").image_root == str(moved)
    assert sheets.get_item(small_site.store, "Crystals", "INS-0003").absolute_image_path == str(moved / "IMG_0003.png")
    # A folder whose pictures differ is refused, and nothing changes.
    (moved / "IMG_0005.png").write_bytes(b"another picture")
    (moved / "IMG_0006.png").unlink()
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=r"1 image\(s\) differ.*INS-0005.*1 image\(s\) are not there.*INS-0006"):
        sheets.relocate_sheet(small_site.store, actor=small_site.user("engineer"), sheet="Crystals",
                              image_root=moved)
    assert snapshot_tables(small_site.store) == before

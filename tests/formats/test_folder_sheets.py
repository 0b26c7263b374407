"""Sheets from bare folders, folder-per-class labels, joined metadata, and rescans."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.services import labels, sheet_folders, sheet_rescan, sheets


def _png(path: Path, shade: int = 0, size: tuple[int, int] = (16, 12), exif: bool = False) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("L", size, color=shade)
    if exif:
        info = Image.Exif()
        info[0x010F], info[0x0110], info[0x0112], info[0x0132] = "Acme", "Inspector 3", 6, "2026:11:30 14:05:09"
        img.save(path, exif=info.tobytes())
    else:
        img.save(path)
    return path


def _folder(root: Path) -> Path:
    _png(root / "crack" / "a.png", 10, exif=True)
    _png(root / "crack" / "deep" / "b.png", 20)
    _png(root / "none" / "c.png", 30)
    (root / "notes.txt").write_text("not an image")
    return root


def test_a_bare_folder_is_a_sheet_with_file_metadata(small_site, tmp_path: Path) -> None:
    root = _folder(tmp_path / "shots")
    report, _ = sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Shots",
                                    metadata_path=None, image_root=root)
    assert report.items == 3
    items = {i.item_ref: i for i in sheets.list_items(small_site.store, "Shots", limit=None)}
    assert sorted(items) == ["crack/a.png", "crack/deep/b.png", "none/c.png"]
    a = items["crack/a.png"]
    assert a.image_path == "crack/a.png" and a.file_sha256 == sheets.sha256_file(root / "crack" / "a.png")
    assert a.metadata["width"] == 16 and a.metadata["height"] == 12 and a.metadata["format"] == "PNG"
    assert a.metadata["camera"] == "Acme Inspector 3" and a.metadata["orientation"] == 6
    assert a.metadata["captured_at"] == "2026-11-30T14:05:09"
    assert "camera" not in items["none/c.png"].metadata


def test_class_folders_create_labels_and_unknown_classes_are_refused(small_site, tmp_path: Path) -> None:
    root = _folder(tmp_path / "shots")
    engineer = small_site.user("engineer")
    before = snapshot_tables(small_site.store)
    _png(root / "wobble" / "d.png")
    with pytest.raises(ValidationError, match="wobble"):
        sheets.import_sheet(small_site.store, actor=engineer, name="Shots", metadata_path=None, image_root=root,
                            class_label_type="classification")
    assert snapshot_tables(small_site.store) == before
    (root / "wobble" / "d.png").unlink()
    report, _ = sheets.import_sheet(small_site.store, actor=engineer, name="Shots", metadata_path=None,
                                    image_root=root, class_label_type="classification")
    assert report.labels == 3
    got = {r.item_ref: r.label_data for r in labels.labels_for_sheet(small_site.store, sheet="Shots")}
    assert got == {"crack/a.png": {"defect_type": "crack"}, "crack/deep/b.png": {"defect_type": "crack"},
                   "none/c.png": {"defect_type": "none"}}


def test_links_leaving_the_folder_and_unreadable_files_are_refused_by_name(small_site, tmp_path: Path) -> None:
    root = _folder(tmp_path / "shots")
    outside = _png(tmp_path / "elsewhere" / "secret.png")
    os.symlink(outside, root / "none" / "link.png")
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=r"none/link\.png: a link leaving"):
        sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Shots", metadata_path=None,
                            image_root=root)
    (root / "none" / "link.png").unlink()
    if os.geteuid() != 0:  # root reads every file whatever its mode
        (root / "none" / "c.png").chmod(0)
        with pytest.raises(ValidationError, match=r"none/c\.png: cannot be read"):
            sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Shots",
                                metadata_path=None, image_root=root)
        (root / "none" / "c.png").chmod(0o644)
    with pytest.raises(ValidationError, match="is not there"):
        sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Shots", metadata_path=None,
                            image_root=tmp_path / "no-such-drive")
    assert snapshot_tables(small_site.store) == before


def test_a_metadata_file_joins_later(small_site, tmp_path: Path) -> None:
    root = _folder(tmp_path / "shots")
    engineer = small_site.user("engineer")
    sheets.import_sheet(small_site.store, actor=engineer, name="Shots", metadata_path=None, image_root=root)
    meta = tmp_path / "meta.csv"
    meta.write_text("file,batch\ncrack/a.png,XL-1\nc.png,XL-2\n")
    report, _ = sheet_folders.join_metadata(small_site.store, actor=engineer, sheet="Shots", metadata_path=meta,
                                            key_column="file")
    assert (report.joined, report.without_row) == (2, 1)
    items = {i.item_ref: i.metadata for i in sheets.list_items(small_site.store, "Shots", limit=None)}
    assert items["crack/a.png"]["batch"] == "XL-1" and items["crack/a.png"]["width"] == 16
    assert items["none/c.png"]["batch"] == "XL-2"
    bad = tmp_path / "bad.csv"
    bad.write_text("file,batch\nnope.png,XL-9\n")
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="nope.png"):
        sheet_folders.join_metadata(small_site.store, actor=engineer, sheet="Shots", metadata_path=bad,
                                    key_column="file")
    assert snapshot_tables(small_site.store) == before


def test_rescan_finds_new_changed_and_deleted_files_and_flags_labels(small_site, tmp_path: Path) -> None:
    root = _folder(tmp_path / "shots")
    engineer = small_site.user("engineer")
    sheets.import_sheet(small_site.store, actor=engineer, name="Shots", metadata_path=None, image_root=root,
                        class_label_type="classification")
    _png(root / "none" / "new.png", 99)
    _png(root / "crack" / "a.png", 200, size=(20, 10))  # new content under the same name
    (root / "crack" / "deep" / "b.png").unlink()
    report, changes = sheet_rescan.rescan_sheet(small_site.store, actor=engineer, sheet="Shots")
    assert (report.new, report.changed, report.missing, report.unchanged) == (1, 1, 1, 1)
    assert report.new_items == ["none/new.png"] and report.changed_items == ["crack/a.png"]
    assert report.flagged_labels == 1 and changes.labels
    items = {i.item_ref: i for i in sheets.list_items(small_site.store, "Shots", limit=None)}
    assert items["crack/a.png"].file_sha256 == sheets.sha256_file(root / "crack" / "a.png")
    assert items["crack/a.png"].metadata["width"] == 20
    assert items["crack/deep/b.png"].missing
    assert items["none/new.png"].metadata["format"] == "PNG"
    label = labels.get_label(small_site.store, sheet="Shots", item_ref="crack/a.png", label_type="classification")
    assert label.review_state == "content_changed" and label.version == 1  # flagged, not reused or rewritten
    info = sheets.get_sheet(small_site.store, "Shots")
    assert (info.item_count, info.missing_count) == (4, 1)
    again, _ = sheet_rescan.rescan_sheet(small_site.store, actor=engineer, sheet="Shots")
    assert (again.new, again.changed, again.missing, again.unchanged) == (0, 0, 0, 3)


def test_rescan_with_the_drive_unplugged_changes_nothing(small_site, tmp_path: Path) -> None:
    root = _folder(tmp_path / "shots")
    engineer = small_site.user("engineer")
    sheets.import_sheet(small_site.store, actor=engineer, name="Shots", metadata_path=None, image_root=root)
    before = snapshot_tables(small_site.store)
    root.rename(tmp_path / "unplugged")
    with pytest.raises(ValidationError, match="is not there"):
        sheet_rescan.rescan_sheet(small_site.store, actor=engineer, sheet="Shots")
    root.mkdir()  # an empty mount point where the drive was
    with pytest.raises(ValidationError, match="holds none of"):
        sheet_rescan.rescan_sheet(small_site.store, actor=engineer, sheet="Shots")
    assert snapshot_tables(small_site.store) == before


def test_rescan_of_a_metadata_sheet_adds_new_rows_and_sees_changed_images(small_site) -> None:
    engineer = small_site.user("engineer")
    with open(small_site.metadata, "a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(["INS-0099", "IMG_0099.png", 30.0, "XL-0"])
    _png(small_site.images / "IMG_0099.png", 5)
    _png(small_site.images / "IMG_0003.png", 250)
    report, _ = sheet_rescan.rescan_sheet(small_site.store, actor=engineer, sheet="Crystals")
    assert (report.new, report.changed, report.missing) == (1, 1, 0)
    assert report.new_items == ["INS-0099"] and report.changed_items == ["INS-0003"]
    item = sheets.get_item(small_site.store, "Crystals", "INS-0099")
    assert item.metadata["crystal_batch_id"] == "XL-0" and item.file_sha256 is not None


def test_a_metadata_row_through_a_linked_folder_leaving_the_images_is_refused(small_site, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _png(outside / "x.png")
    images = tmp_path / "imgs"
    _png(images / "ok.png")
    os.symlink(outside, images / "linked")
    meta = tmp_path / "m.csv"
    meta.write_text("id,image\nA,ok.png\nB,linked/x.png\n")
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=r"row 3 \(B\): linked/x\.png"):
        sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="L", metadata_path=meta,
                            key_column="id", image_root=images, image_column="image")
    assert snapshot_tables(small_site.store) == before


def test_a_cancelled_rescan_changes_nothing(small_site, tmp_path: Path) -> None:
    from vital_desktop.core.errors import Cancelled
    from vital_desktop.core.progress import Progress

    root = _folder(tmp_path / "shots")
    engineer = small_site.user("engineer")
    sheets.import_sheet(small_site.store, actor=engineer, name="Shots", metadata_path=None, image_root=root)
    _png(root / "none" / "new.png", 99)
    before = snapshot_tables(small_site.store)
    progress = Progress()
    progress.cancel.cancel()
    with pytest.raises(Cancelled):
        sheet_rescan.rescan_sheet(small_site.store, actor=engineer, sheet="Shots", progress=progress)
    assert snapshot_tables(small_site.store) == before

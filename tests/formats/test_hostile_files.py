"""Hostile files at sheet and label import: a clear error naming the file (and row), store unchanged.

One test per file: corrupt Parquet, a 128 KiB CSV field, JSONL nested 100,000 deep, a 5,000-digit
integer, a 400-megapixel PNG (refused from its header, never decoded), mixed CRLF/LF CSVs.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.services import formats, labels, sheets

BIG = 128 * 1024


def _refused(site, match: str, call) -> None:
    before = snapshot_tables(site.store)
    with pytest.raises(ValidationError, match=match):
        call()
    assert snapshot_tables(site.store) == before


def _import(site, path: Path, **more):
    return lambda: formats.import_labels(site.store, actor=site.user("engineer"), path=path, **more)


def _sheet(site, metadata: Path | None, images: Path | None = None, **more):
    return lambda: sheets.import_sheet(site.store, actor=site.user("engineer"), name="Hostile", metadata_path=metadata,
                                       image_root=images, **more)


def _label_row(item: str, data: str, notes: str | None = None) -> str:
    row = f'Crystals,{item},classification,"{data.replace(chr(34), chr(34) * 2)}"'
    return row if notes is None else f"{row},{notes}"


def test_corrupt_parquet_label_file_and_metadata_file(small_site, tmp_path: Path) -> None:
    bad = tmp_path / "labels.parquet"
    bad.write_bytes(b"PAR1" + b"\x00garbage" * 64 + b"PAR1")
    _refused(small_site, r"labels\.parquet", _import(small_site, bad))
    meta = tmp_path / "meta.parquet"
    shutil.copy(bad, meta)
    _refused(small_site, r"meta\.parquet", _sheet(small_site, meta, key_column="id"))


def test_a_128_kib_csv_field_is_refused_naming_the_row_and_column(small_site, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("sheet,item_ref,label_type,label_data,notes\n"
                    + _label_row("INS-0001", '{"defect_type": "crack"}', "") + "\n"
                    + _label_row("INS-0002", '{"defect_type": "none"}', "x" * BIG) + "\n")
    _refused(small_site, r"labels\.csv row 2.*notes.*128 KiB", _import(small_site, path))
    meta = tmp_path / "meta.csv"
    meta.write_text("id,comment\nA,short\nB," + "y" * BIG + "\n")
    _refused(small_site, r"meta\.csv row 3.*comment.*128 KiB", _sheet(small_site, meta, key_column="id"))


def test_jsonl_nested_100000_deep_is_refused(small_site, tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text(json.dumps({"sheet": "Crystals", "item_ref": "INS-0001", "label_type": "classification",
                                "label_data": {"defect_type": "crack"}}) + "\n"
                    + '{"sheet": "Crystals", "item_ref": "INS-0002", "label_type": "classification", '
                    + f'"label_data": {deep}}}\n')
    _refused(small_site, r"labels\.jsonl.*row 2.*nested", _import(small_site, path))
    coco = tmp_path / "deep.json"  # an annotation file too
    coco.write_text('{"images": [], "annotations": ' + deep + ', "categories": []}')
    _refused(small_site, r"deep\.json.*nested", _import(small_site, coco, sheet="Crystals", label_type="localization",
                                                        fmt="coco"))


def test_a_5000_digit_integer_is_refused(small_site, tmp_path: Path) -> None:
    huge = "9" * 5000
    path = tmp_path / "labels.jsonl"
    path.write_text('{"sheet": "Crystals", "item_ref": "INS-0001", "label_type": "classification", '
                    f'"label_data": {{"defect_type": "crack", "severity": {huge}}}}}\n')
    _refused(small_site, r"labels\.jsonl.*row 1.*digits", _import(small_site, path))
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("sheet,item_ref,label_type,label_data\n"
                        + _label_row("INS-0001", '{"defect_type": "crack", "severity": ' + huge + "}") + "\n")
    _refused(small_site, r"row 1.*digits", _import(small_site, csv_path))
    coco = json.loads((Path(__file__).parent / "fixtures" / "coco.json").read_text())
    text = json.dumps(coco).replace('"images": [', f'"images": [{{"id": {huge}, "file_name": "x.png"}}, ', 1)
    big = tmp_path / "big.json"
    big.write_text(text)
    _refused(small_site, r"big\.json.*digits", _import(small_site, big, sheet="Crystals", label_type="localization",
                                                       fmt="coco"))


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height, with a tiny (bogus) pixel stream: a bomb's shape."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
                     + chunk(b"IEND", b""))
    return path


def test_a_400_megapixel_png_is_refused_from_its_header(small_site, tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    shutil.copy(small_site.images / "IMG_0001.png", (folder / "ok").mkdir(parents=True) or folder / "ok" / "a.png")
    _png_header_only(folder / "ok" / "bomb.png", 20_000, 20_000)
    _refused(small_site, r"ok/bomb\.png.*20000x20000.*megapixel", _sheet(small_site, None, folder))
    meta = tmp_path / "meta.csv"
    meta.write_text("id,image\nA,ok/a.png\nB,ok/bomb.png\n")
    _refused(small_site, r"row 3.*ok/bomb\.png.*megapixel", _sheet(small_site, meta, folder, key_column="id",
                                                                    image_column="image"))
    # a sheet made before the check: the label import reads sizes from headers and refuses too
    _png_header_only(small_site.images / "IMG_0003.png", 20_000, 20_000)
    _refused(small_site, r"IMG_0003\.png.*megapixel", _import(
        small_site, Path(__file__).parent / "fixtures" / "coco.json", sheet="Crystals", label_type="localization"))


def test_mixed_crlf_and_lf_csvs(small_site, tmp_path: Path) -> None:
    # sheet metadata: the reader cannot make one table of it; the error says which lines differ
    meta = tmp_path / "meta.csv"
    meta.write_bytes(b"id,comment\r\nA,one\nB,two\r\n")
    _refused(small_site, r"meta\.csv.*line 1 ends in CRLF, line 2 in LF", _sheet(small_site, meta, key_column="id"))
    # a label file: read row by row whatever each row ends with, no stray carriage return kept
    path = tmp_path / "labels.csv"
    path.write_bytes(b"sheet,item_ref,label_type,label_data,notes\r\n"
                     + _label_row("INS-0001", '{"defect_type": "crack"}', "first").encode() + b"\n"
                     + _label_row("INS-0002", '{"defect_type": "none"}', "second").encode() + b"\r\n")
    outcome, _ = formats.import_labels(small_site.store, actor=small_site.user("engineer"), path=path)
    assert outcome.created == 2
    got = {r.item_ref: (r.label_data, r.notes) for r in labels.labels_for_sheet(small_site.store, sheet="Crystals")}
    assert got == {"INS-0001": ({"defect_type": "crack"}, "first"), "INS-0002": ({"defect_type": "none"}, "second")}

"""Documents and telemetry series as sheet items: import, extraction metadata, bad input, labels."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env, snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.demo.pdf import write_pdf
from vital_desktop.services import documents, item_import, item_text, labels, sheets
from vital_desktop.services.item_kinds import ITEM_KINDS, item_kind


def _docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_pdf(folder / "report.pdf", [f"Line {i}: licence RSL-2024-0042, Cs-137" for i in range(70)], title="Report A")
    (folder / "notes.md").write_text("# Notes\n\nStatus: compliant\n", encoding="utf-8")
    (folder / "plain.txt").write_text("Dose rate 1.2 uSv/h at the boundary.\n", encoding="utf-8")
    (folder / "image.png").write_bytes(b"not a document, skipped")
    return folder


def test_document_import_extracts_text_pages_and_keeps_it_in_the_store(small_site, tmp_path: Path) -> None:
    folder = _docs(tmp_path / "docs")
    report, changes = item_import.import_documents(small_site.store, actor=small_site.user("engineer"), name="Docs",
                                                   folder=folder, classification="CONFIDENTIAL")
    assert changes.sheets and report.items == 3 and report.pages == 2 + 1 + 1
    info = sheets.get_sheet(small_site.store, "Docs")
    assert info.item_kind == "document" and info.classification == ["CONFIDENTIAL"]
    assert "document_text" in info.columns and "pages" in info.columns
    items = {i.item_ref: i for i in sheets.list_items(small_site.store, "Docs", limit=None)}
    assert sorted(items) == ["notes.md", "plain.txt", "report.pdf"]
    pdf = items["report.pdf"]
    assert pdf.metadata["pages"] == 2 and pdf.metadata["format"] == "pdf" and pdf.metadata["warnings"] == []
    assert pdf.file_sha256 == sheets.sha256_file(folder / "report.pdf") and pdf.image_path is None
    assert "Line 69: licence RSL-2024-0042" in pdf.metadata["document_text"] or pdf.metadata["truncated"] is False
    assert items["notes.md"].metadata["format"] == "markdown"
    # The full text is kept: the review view reads it without the file.
    (folder / "report.pdf").unlink()
    content = item_text.item_content(small_site.store, "Docs", "report.pdf")
    assert content.view == "text" and "Line 69: licence RSL-2024-0042, Cs-137" in content.text
    assert "Report A" in content.text


def test_prompt_text_is_cut_to_fit_the_model(tmp_path: Path) -> None:
    long = "word " * 5000
    text = item_text.document_prompt_text(long)
    assert len(text) < item_text.PROMPT_CHARS + 80 and text.endswith("characters)")
    assert item_text.document_prompt_text("a\n\n  b   c") == "a\nb c"


def test_pdf_metadata_warns_about_pages_without_text(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    with open(tmp_path / "scan.pdf", "wb") as handle:
        writer.write(handle)
    doc = documents.extract(tmp_path / "scan.pdf")
    assert doc.pages == 1 and any("no text layer on page(s) 1" in w for w in doc.warnings)


def test_pdf_encrypted_with_an_empty_password_opens_with_a_warning(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    source = write_pdf(tmp_path / "a.pdf", ["Open to all readers"])
    writer = PdfWriter(clone_from=str(source))
    writer.encrypt(user_password="", owner_password="owner-secret")
    writer.write(str(tmp_path / "b.pdf"))
    doc = documents.extract(tmp_path / "b.pdf")
    assert "Open to all readers" in doc.text and any("empty password" in w for w in doc.warnings)


def _bad_pdf_encrypted(path: Path) -> None:
    from pypdf import PdfWriter

    source = write_pdf(path.with_suffix(".src"), ["secret"])
    writer = PdfWriter(clone_from=str(source))
    writer.encrypt("a-password")
    writer.write(str(path))
    path.with_suffix(".src").unlink()


def _bad_pdf_corrupt(path: Path) -> None:
    data = write_pdf(path.with_suffix(".src"), ["x" * 50] * 10).read_bytes()
    path.with_suffix(".src").unlink()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(("name", "make", "message"), [
    ("empty.pdf", lambda p: p.write_bytes(b""), "empty.pdf is empty (0 bytes)"),
    ("locked.pdf", _bad_pdf_encrypted, "locked.pdf is encrypted (password protected)"),
    ("broken.pdf", _bad_pdf_corrupt, "broken.pdf is not a readable PDF"),
    ("fake.pdf", lambda p: p.write_bytes(b"<html>not a pdf at all</html>"), "fake.pdf is not a PDF"),
    ("junk.txt", lambda p: p.write_bytes(bytes(range(256)) * 20), "junk.txt is not text: binary data"),
    ("empty.md", lambda p: p.write_bytes(b""), "empty.md is empty"),
])
def test_bad_documents_are_refused_by_name_with_the_store_unchanged(small_site, tmp_path: Path, name, make,
                                                                    message) -> None:
    folder = _docs(tmp_path / "docs")
    make(folder / name)
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError) as caught:
        item_import.import_documents(small_site.store, actor=small_site.user("engineer"), name="Docs", folder=folder)
    assert message in caught.value.message and "1 document(s) cannot be imported" in caught.value.message
    assert snapshot_tables(small_site.store) == before


def test_huge_text_files_are_read_up_to_the_cap(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(documents, "MAX_TEXT_BYTES", 1000)
    (tmp_path / "big.txt").write_text("abcdefghij" * 500, encoding="utf-8")
    doc = documents.extract(tmp_path / "big.txt")
    assert doc.chars == 1000 and doc.truncated and any("only the first" in w for w in doc.warnings)
    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 100)
    write_pdf(tmp_path / "big.pdf", ["x" * 80] * 5)
    with pytest.raises(ValidationError, match=r"big.pdf is 0 MiB; documents larger than 0 MiB are not read"):
        documents.extract(tmp_path / "big.pdf")


def _telemetry_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _readings(serial: str, n: int, drift: float) -> list[dict]:
    return [{"detector_serial": serial, "timestamp": f"2025-01-{1 + i:02d}T06:00:00", "hv_voltage": 1000 - drift * i,
             "count_rate": 1200 + i, "site": "north"} for i in range(n)]


def test_telemetry_grouped_by_a_key_column_makes_one_series_per_value(small_site, tmp_path: Path) -> None:
    path = _telemetry_csv(tmp_path / "tel.csv", _readings("DET-1", 20, 0.0) + _readings("DET-2", 12, 2.5))
    report, _ = item_import.import_telemetry(small_site.store, actor=small_site.user("engineer"), name="Tel",
                                             path=path, group_by="detector_serial")
    assert report.items == 2 and report.points == 32
    info = sheets.get_sheet(small_site.store, "Tel")
    assert info.item_kind == "telemetry" and "telemetry_summary" in info.columns and "site" in info.columns
    item = sheets.get_item(small_site.store, "Tel", "DET-2")
    assert item.metadata["points"] == 12 and item.metadata["channels"] == ["hv_voltage", "count_rate"]
    assert item.metadata["time_start"].startswith("2025-01-01") and item.metadata["site"] == "north"
    assert "hv_voltage: first 1000, last 972.5" in item.metadata["telemetry_summary"]
    assert "trend -2.5 per reading" in item.metadata["telemetry_summary"]
    content = item_text.item_content(small_site.store, "Tel", "DET-2")
    assert content.view == "plot" and len(content.series["plot"]["hv_voltage"]) == 12
    assert content.series["plot"]["hv_voltage"][-1] == pytest.approx(972.5)


def test_telemetry_folder_makes_one_item_per_file(small_site, tmp_path: Path) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    _telemetry_csv(folder / "a.csv", _readings("DET-1", 5, 1.0))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"t": [0.0, 1.0, 2.0], "gain": [1.0, 1.1, 1.3]}), folder / "b.parquet")
    report, _ = item_import.import_telemetry(small_site.store, actor=small_site.user("engineer"), name="Series",
                                             path=folder)
    assert report.items == 2
    b = sheets.get_item(small_site.store, "Series", "b.parquet")
    assert b.metadata["channels"] == ["gain"] and b.metadata["points"] == 3


@pytest.mark.parametrize(("rows", "kwargs", "message"), [
    (_readings("DET-1", 3, 0.0), {"group_by": "serial"}, "group column 'serial' is not there"),
    ([*_readings("DET-1", 3, 0.0), {"detector_serial": "DET-1", "timestamp": "2025-02-01", "hv_voltage": "n/a",
                                     "count_rate": 5, "site": "x"}],
     {"group_by": "detector_serial"}, "column 'hv_voltage' holds values that are not numbers (1 of 4): row 5: 'n/a'"),
    (_readings("DET-1", 3, 0.0), {"group_by": "detector_serial", "columns": ["site"]},
     "column 'site' holds values that are not numbers"),
    ([{"detector_serial": "", "v": 1}], {"group_by": "detector_serial"}, "group column 'detector_serial' is empty on"),
    (_readings("DET-1", 3, 0.0), {}, "say which column groups the rows"),
])
def test_bad_telemetry_is_refused_with_the_store_unchanged(small_site, tmp_path: Path, rows, kwargs, message) -> None:
    path = _telemetry_csv(tmp_path / "tel.csv", rows)
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError) as caught:
        item_import.import_telemetry(small_site.store, actor=small_site.user("engineer"), name="Tel", path=path,
                                     **kwargs)
    assert message in caught.value.message and ("tel.csv" in caught.value.message or "groups" in message)
    assert snapshot_tables(small_site.store) == before


def test_telemetry_caps(small_site, tmp_path: Path, monkeypatch) -> None:
    from vital_desktop.services import telemetry

    path = _telemetry_csv(tmp_path / "tel.csv", _readings("DET-1", 30, 1.0))
    monkeypatch.setattr(telemetry, "MAX_ROWS", 10)
    with pytest.raises(ValidationError, match="tel.csv has 30 rows; at most 10 are read"):
        item_import.import_telemetry(small_site.store, actor=small_site.user("engineer"), name="T", path=path,
                                     group_by="detector_serial")
    monkeypatch.setattr(telemetry, "MAX_FILE_BYTES", 10)
    with pytest.raises(ValidationError, match="files larger than 0 MiB are not read"):
        item_import.import_telemetry(small_site.store, actor=small_site.user("engineer"), name="T", path=path,
                                     group_by="detector_serial")
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(ValidationError, match="zero.csv is empty"):
        item_import.import_telemetry(small_site.store, actor=small_site.user("engineer"), name="T",
                                     path=tmp_path / "zero.csv", group_by="k")


def test_document_items_are_labelled_through_the_one_write_path(small_site, tmp_path: Path) -> None:
    item_import.import_documents(small_site.store, actor=small_site.user("engineer"), name="Docs",
                                 folder=_docs(tmp_path / "docs"))
    result, _ = labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Docs", item_ref="notes.md",
                                 label_type="maintenance", label_data={"action": "none", "failure_risk": 0.1})
    assert result.label.version == 1
    history = labels.history(small_site.store, sheet="Docs", item_ref="notes.md", label_type="maintenance")
    assert [h.version for h in history] == [1]
    with pytest.raises(ValidationError):
        labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Docs", item_ref="nope.md",
                         label_type="maintenance", label_data={"action": "none"})


def test_the_kind_registry_drives_views_and_evidence() -> None:
    assert {k: v.view for k, v in ITEM_KINDS.items()} == {"image": "image", "document": "text", "telemetry": "plot"}
    assert item_kind(None).name == "image" and item_kind(None).needs_image_evidence
    assert not item_kind("document").needs_image_evidence
    assert item_text.evidence_text("document", {"document_text": "abc"}) == "Document text:\nabc"
    assert item_text.evidence_text("image", {"document_text": "abc"}) is None
    with pytest.raises(ValidationError, match="unknown item kind 'video'"):
        item_kind("video")


@pytest.mark.slow
def test_cli_imports_documents_and_telemetry_and_shows_content(small_site, tmp_path: Path) -> None:
    folder = _docs(tmp_path / "docs")
    tel = _telemetry_csv(tmp_path / "tel.csv", _readings("DET-1", 4, 1.0))
    small_site.store.close()
    env = cli_env("engineer", small_site.home)

    def vital(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vital_desktop.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    done = vital("--json", "sheet", "import", "Docs", "--documents", str(folder))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pages"] == 4 and json.loads(done.stdout)["kind"] == "document"
    done = vital("sheet", "import", "Tel", "--telemetry", str(tel), "--group-by", "detector_serial")
    assert done.returncode == 0 and "1 telemetry series, 4 readings" in done.stdout
    bad = vital("sheet", "import", "X", "--documents", str(folder), "--images", str(folder))
    assert bad.returncode != 0 and "leave out --metadata, --images" in bad.stderr and "Traceback" not in bad.stderr


def test_erasing_document_items_removes_their_stored_text(small_site, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from vital_desktop.services import erasure
    from vital_desktop.store.models import ItemContent

    item_import.import_documents(small_site.store, actor=small_site.user("engineer"), name="Docs",
                                 folder=_docs(tmp_path / "docs"))
    erasure.erase_items(small_site.store, actor=small_site.user("admin"), sheet="Docs", item_refs=["notes.md"],
                        reason="test")
    with small_site.store.read() as s:
        left = sorted(s.scalars(sa.select(ItemContent.item_ref)))
    assert left == ["plain.txt", "report.pdf"]
    erasure.delete_sheet(small_site.store, actor=small_site.user("admin"), sheet="Docs", reason="test")
    with small_site.store.read() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ItemContent)) == 0

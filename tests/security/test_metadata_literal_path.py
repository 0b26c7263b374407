"""A metadata path is read literally: `meta[1].csv` is that file, never a glob matching `meta1.csv`."""

from __future__ import annotations

import csv

from vital_desktop.services import sheets


def _write(path, batch: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["inspection_id", "crystal_batch_id"])
        writer.writerow(["INS-1", batch])


def test_brackets_in_a_metadata_path_are_taken_literally(tmp_path) -> None:
    _write(tmp_path / "meta[1].csv", "the-right-file")
    _write(tmp_path / "meta1.csv", "the-wrong-file")
    _, table = sheets.read_metadata(tmp_path / "meta[1].csv")
    assert table.column("crystal_batch_id").to_pylist() == ["the-right-file"]
    _write(tmp_path / "all*.csv", "star-file")
    _write(tmp_path / "allx.csv", "glob-match")
    _, table = sheets.read_metadata(tmp_path / "all*.csv")
    assert table.column("crystal_batch_id").to_pylist() == ["star-file"]

"""The command line of this work: folder sheets, rescan, label import/export in any format, erasure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import PASSWORDS
from vital_desktop.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def cli(small_site, monkeypatch, capsys):
    small_site.store.close()

    def run(*args: str, user: str = "engineer") -> tuple[int, dict, str]:
        monkeypatch.setenv("VITAL_USER", user)
        monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS[user])
        code = main(["--home", str(small_site.home), "--json", *args])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if out.strip() else {}), err

    yield run
    from vital_desktop.store import open_store

    small_site.store = open_store(small_site.home)


def test_folder_sheet_rescan_import_export_and_erase_from_the_command_line(cli, small_site, tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    (folder / "crack").mkdir(parents=True)
    (folder / "none").mkdir()
    shutil.copy(small_site.images / "IMG_0001.png", folder / "crack" / "IMG_0001.png")
    shutil.copy(small_site.images / "IMG_0002.png", folder / "none" / "IMG_0002.png")
    code, out, _ = cli("sheet", "import", "Shots", "--images", str(folder), "--class-type", "classification")
    assert code == 0 and out["items"] == 2 and out["labels"] == 2
    shutil.copy(small_site.images / "IMG_0003.png", folder / "none" / "IMG_0003.png")
    code, out, _ = cli("sheet", "rescan", "Shots")
    assert code == 0 and (out["new"], out["changed"], out["missing"]) == (1, 0, 0)

    code, out, _ = cli("label", "import", str(FIXTURES / "coco.json"), "--sheet", "Crystals", "--type", "localization",
                       user="inspector")
    assert code == 0 and out["format"] == "coco" and out["created"] == 3
    target = tmp_path / "yolo"
    code, out, _ = cli("label", "export", "--sheet", "Crystals", "--type", "localization", "--format", "yolo",
                       "--out", str(target))
    assert code == 0 and out["labels"] == 3 and out["use"] == "training"
    assert (target / "data.yaml").is_file() and list((target / "labels").rglob("*.txt"))

    code, out, err = cli("label", "import", str(FIXTURES / "cvat.xml"), "--sheet", "Crystals", "--type",
                         "classification", user="inspector")
    assert code == 2 and "needs exactly one class" in err and "cvat.xml" in err  # boxes are not a class
    code, out, err = cli("sheet", "erase-items", "Crystals", "--items", "INS-0001,INS-0002", "--reason", "request 9")
    assert code != 0 and "may not" in err  # engineers may not erase
    code, out, _ = cli("sheet", "erase-items", "Crystals", "--items", "INS-0001,INS-0002", "--reason", "request 9",
                       user="admin")
    assert code == 0 and out["items"] == 2 and out["labels"] == 2
    code, out, _ = cli("sheet", "delete", "Shots", "--reason", "retention", user="admin")
    assert code == 0 and out["sheet_deleted"] and out["items"] == 3

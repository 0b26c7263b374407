"""The `vital` command line: --json outputs, errors on stderr with non-zero status, roles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSWORDS, snapshot_tables, write_small_dataset
from vital_desktop.cli import main


@pytest.fixture
def cli(small_site, monkeypatch, capsys):
    """Run `vital` in-process as a user against the small site (closed first, as a CLI would find it)."""
    small_site.store.close()

    def run(*args: str, user: str = "engineer", json_out: bool = True) -> tuple[int, dict | str, str]:
        monkeypatch.setenv("VITAL_USER", user)
        monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS[user])
        argv = ["--home", str(small_site.home)] + (["--json"] if json_out else []) + list(args)
        code = main(argv)
        out, err = capsys.readouterr()
        return code, (json.loads(out) if json_out and out.strip() else out), err

    yield run
    from vital_desktop.store import open_store

    small_site.store = open_store(small_site.home)


def test_sheet_commands_json(cli, small_site, tmp_path: Path) -> None:
    images, metadata = write_small_dataset(tmp_path / "more", n=4, missing=(1,))
    code, out, _ = cli("sheet", "import", "More", "--metadata", str(metadata), "--images", str(images),
                       "--key", "inspection_id", "--image-column", "image_path", "--classification", "PII")
    assert code == 0
    assert out["items"] == 4 and out["missing"] == ["INS-0001"] and out["sheet"]["classification"] == ["PII"]
    code, out, _ = cli("sheet", "list")
    assert [s["name"] for s in out["sheets"]] == ["Crystals", "More"]
    code, out, _ = cli("sheet", "show", "More", "--limit", "2")
    assert [i["item_ref"] for i in out["items"]] == ["INS-0000", "INS-0001"] and out["items"][1]["missing"]


def test_label_commands_json(cli, tmp_path: Path) -> None:
    code, out, _ = cli("label", "set", "--sheet", "Crystals", "--item", "INS-0003", "--type", "classification",
                       "--data", '{"defect_type": "crack"}', user="inspector")
    assert code == 0 and out["outcome"] == "created" and out["label"]["version"] == 1
    cli("label", "set", "--sheet", "Crystals", "--item", "INS-0003", "--type", "classification",
        "--data", '{"defect_type": "inclusion"}', "--reason", "closer look", user="inspector")
    code, out, _ = cli("label", "history", "--sheet", "Crystals", "--item", "INS-0003", "--type", "classification")
    assert [h["version"] for h in out["history"]] == [1, 2] and out["history"][1]["reason"] == "closer look"
    code, out, _ = cli("label", "rollback", "--sheet", "Crystals", "--item", "INS-0003", "--type", "classification",
                       "--to-version", "1", user="inspector")
    assert out["label"]["version"] == 3 and out["label"]["label_data"] == {"defect_type": "crack"}
    code, out, _ = cli("label", "export", "--format", "jsonl", "--out", str(tmp_path / "l.jsonl"))
    assert code == 0 and out["labels"] == 1
    code, out, _ = cli("audit", "verify", user="admin")
    assert code == 0 and out["ok"] is True


def test_errors_go_to_stderr_with_nonzero_status_and_change_nothing(cli, small_site) -> None:
    from vital_desktop.store import open_store

    store = open_store(small_site.home)
    before = snapshot_tables(store)
    store.close()
    code, out, err = cli("label", "set", "--sheet", "Crystals", "--item", "INS-0003", "--type", "classification",
                         "--data", '{"defect_type": "wobble"}', user="inspector")
    assert code == 2 and out == "" and "not valid" in err
    code, out, err = cli("label", "set", "--sheet", "Nope", "--item", "x", "--type", "classification",
                         "--data", "{}", user="inspector")
    assert code == 3 and "no sheet named 'Nope'" in err
    code, out, err = cli("label", "set", "--sheet", "Crystals", "--item", "x", "--type", "classification",
                         "--data", "{not json", user="inspector")
    assert code == 2 and "not valid JSON" in err
    code, out, err = cli("sheet", "import", "X", "--metadata", str(small_site.metadata), "--key", "inspection_id",
                         user="inspector")
    assert code == 4 and "may not import sheet" in err
    code, out, err = cli("user", "add", "mallory", "--role", "admin", user="engineer")
    assert code != 0
    store = open_store(small_site.home)
    assert snapshot_tables(store) == before
    store.close()


def test_wrong_password_is_refused(cli, monkeypatch, small_site, capsys) -> None:
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", "wrong")
    assert main(["--home", str(small_site.home), "sheet", "list"]) == 4
    assert "wrong password" in capsys.readouterr().err


def test_the_vital_console_script_runs(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "vital_desktop.cli", "--home", str(tmp_path / "h"), "--json",
                             "init", "--site-id", "site-7"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["site_id"] == "site-7" and out["created"] is True
    again = subprocess.run([sys.executable, "-m", "vital_desktop.cli", "--home", str(tmp_path / "h"), "--json",
                            "init"], capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout)["created"] is False


def test_console_entry_exits_with_the_commands_status_and_no_teardown_noise(tmp_path: Path) -> None:
    code = "from vital_desktop.cli import entry; entry()"
    ok = subprocess.run([sys.executable, "-c", code, "--home", str(tmp_path / "h"), "init", "--site-id", "s1"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "nanobind" not in ok.stderr and "site s1" in ok.stdout
    bad = subprocess.run([sys.executable, "-c", code, "--home", str(tmp_path / "h"), "sheet", "list"],
                         capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
                                                                            "VITAL_USER": "", "VITAL_PASSWORD": ""})
    assert bad.returncode == 2 and "say who you are" in bad.stderr

"""`vital model register|activate|list` and `vital predict --json`, in-process."""

from __future__ import annotations

import json

from vital_desktop import cli
from vital_desktop.core.users import SYSTEM_USER
from vital_desktop.services import accounts
from vital_desktop.store import open_store


def test_register_activate_and_predict_from_the_command_line(tmp_path, model_file, demo_files, monkeypatch, capsys):
    home = tmp_path / "home"
    with open_store(home) as store:
        accounts.add_user(store, actor=SYSTEM_USER, username="eng", password="engineer-pass", role="engineer")
    monkeypatch.setenv("VITAL_USER", "eng")
    monkeypatch.setenv("VITAL_PASSWORD", "engineer-pass")

    def run(*argv):
        code = cli.main(["--home", str(home), "--json", *argv])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if out.strip() else None), err

    code, result, _ = run("model", "register", str(model_file), "--kind", "onnx_classifier", "--name", "defects")
    assert code == 0 and result["model"]["ref"] == "defects@1"
    code, result, _ = run("model", "activate", "defects@1")
    assert code == 0 and result["model"]["status"] == "active"
    image = demo_files.image_paths[min(demo_files.labels)]
    code, result, _ = run("predict", "--model", "defects", str(image))
    assert code == 0
    (prediction,) = result["predictions"]
    assert prediction["predicted_class"] in demo_files.classes and prediction["image_width"] == 256
    code, result, _ = run("model", "list")
    assert [m["ref"] for m in result["models"]] == ["defects@1"]
    code, result, err = run("model", "register", str(image), "--kind", "onnx_classifier")
    assert code == 2 and result is None and "not a readable ONNX model" in err

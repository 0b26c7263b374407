"""installer/slim.py on a small stand-in of the PyInstaller folder (the real one takes minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_slim_links_copies_drops_unused_files_and_links_the_desktop_program(tmp_path: Path) -> None:
    app = tmp_path / "vital"
    lib = app / "_internal" / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    blob = bytes(range(256)) * 1024  # 256 KB
    for name in ("libllama.so", "libllama.so.0", "libllama.so.0.5.0"):
        (lib / name).write_bytes(blob)
    (app / "_internal" / "numpy.libs").mkdir()
    (app / "_internal" / "numpy.libs" / "libscipy_openblas.so").write_bytes(blob[::-1])
    translations = app / "_internal" / "PySide6" / "Qt" / "translations"
    translations.mkdir(parents=True)
    (translations / "qtbase_de.qm").write_bytes(b"x" * 100)
    (app / "vital").write_bytes(b"#!/bin/sh\n" + blob)
    done = subprocess.run([sys.executable, str(ROOT / "installer" / "slim.py"), str(app), "--json",
                           str(tmp_path / "slim.json")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "slim.json").read_text())
    assert report["link_saved_bytes"] == 2 * len(blob) and report["desktop_link"]
    links = [p for p in lib.iterdir() if p.is_symlink()]
    assert len(links) == 2 and all(p.read_bytes() == blob for p in lib.iterdir())
    assert not translations.exists()
    assert (app / "vital-desktop").is_symlink() and (app / "vital-desktop").resolve() == (app / "vital").resolve()
    assert not (app / "vital").is_symlink()  # the executable itself stays a file

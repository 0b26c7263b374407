"""Make the PyInstaller folder smaller after the build, and say by how much.

    python installer/slim.py dist/vital [--json report.json]

1. Strips the symbol tables of shared libraries (``strip --strip-unneeded``) that carry them,
   EXCEPT libraries an auditwheel repair rewrote with patchelf (those under a ``*.libs/``
   folder, e.g. numpy's OpenBLAS): stripping those corrupts them (seen: OpenBLAS crashed).
   The executables are never stripped (PyInstaller appends the Python archive to them).
2. Removes what is never read at run time: Qt's translations of its own dialogs (the app is in
   English), Arrow's C++ headers.
3. Replaces identical copies of one file (``libllama.so``, ``libllama.so.0``, ``libllama.so.0.5.0``)
   by relative symbolic links to one of them.
4. Links ``vital-desktop`` to ``vital`` when the build made one executable (Linux, macOS).

The folder still passes installer/smoke_test.py afterwards (installer/build.sh runs it after).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Never read at run time (relative to the folder).
REMOVE = ("_internal/PySide6/Qt/translations", "_internal/pyarrow/include")
#: Only files at least this big are worth a link.
DEDUPE_MIN_BYTES = 64 * 1024


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files in `folder` (links not followed, not counted)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _has_symbols(path: Path) -> bool:
    done = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True, check=False)
    return "not stripped" in done.stdout


def strip_libraries(folder: Path) -> list[str]:
    """Strip shared libraries that are not auditwheel-patched; returns the stripped paths."""
    if shutil.which("strip") is None or shutil.which("file") is None:
        print("slim: strip or file is not installed; libraries left as they are", file=sys.stderr)
        return []
    stripped = []
    for path in sorted((folder / "_internal").rglob("*.so*")):
        if path.is_symlink() or not path.is_file() or any(part.endswith(".libs") for part in path.parts):
            continue
        if not _is_elf(path) or not _has_symbols(path):
            continue
        done = subprocess.run(["strip", "--strip-unneeded", str(path)], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            stripped.append(str(path.relative_to(folder)))
    return stripped


def remove_unused(folder: Path) -> list[str]:
    removed = []
    for name in REMOVE:
        path = folder / name
        if path.exists():
            shutil.rmtree(path)
            removed.append(name)
    return removed


def link_duplicates(folder: Path) -> list[str]:
    """Identical files become relative links to the first copy (by path order)."""
    seen: dict[tuple[int, str], Path] = {}
    linked = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.stat().st_size < DEDUPE_MIN_BYTES:
            continue
        if path.parent == folder:  # the executables stay files
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = (path.stat().st_size, digest)
        original = seen.setdefault(key, path)
        if original is path:
            continue
        path.unlink()
        path.symlink_to(os.path.relpath(original, path.parent))
        linked.append(str(path.relative_to(folder)))
    return linked


def link_desktop(folder: Path) -> bool:
    """`vital-desktop` -> `vital` when the build made one executable."""
    desktop, cli = folder / "vital-desktop", folder / "vital"
    if cli.is_file() and not desktop.exists():
        desktop.symlink_to("vital")
        return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    folder = args.folder.resolve()
    before = folder_bytes(folder)
    report = {"folder": str(folder), "before_bytes": before, "stripped": strip_libraries(folder)}
    after_strip = folder_bytes(folder)
    report["removed"] = remove_unused(folder)
    after_remove = folder_bytes(folder)
    report["linked"] = link_duplicates(folder)
    report["desktop_link"] = link_desktop(folder)
    after = folder_bytes(folder)
    report.update(strip_saved_bytes=before - after_strip, remove_saved_bytes=after_strip - after_remove,
                  link_saved_bytes=after_remove - after, after_bytes=after)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in report.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Frozen entry point of both programs on Linux and macOS: one executable, `vital`, and
`vital-desktop` a link to it (one copy of the Python archive instead of two, about 30 MB less).
The name it was started under picks the program. Windows builds two executables instead
(`vital-desktop` without a console), from launch_desktop.py and launch_cli.py."""

import sys
from pathlib import Path

if __name__ == "__main__":
    from launch_desktop import _installed_model, _run_code_if_asked

    _run_code_if_asked()
    _installed_model()
    if Path(sys.argv[0]).name.lower().startswith("vital-desktop"):
        from launch_desktop import _fixed_numba_cache

        _fixed_numba_cache()
        from vital_desktop.app import entry
    else:
        from vital_desktop.cli import entry
    entry()

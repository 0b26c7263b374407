"""Frozen entry point of `vital-desktop` (PyInstaller runs this file)."""

import os
from pathlib import Path


def _fixed_numba_cache() -> None:
    # In a frozen app numba's cache follows the working directory (NUMBA_CACHE_DIR was ignored,
    # shared/STACK-NOTES.md): pin the working directory to a writable app-data folder first.
    import platformdirs

    cache = Path(platformdirs.user_cache_dir("vital-desktop", "VITAL")) / "numba"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache))
    os.chdir(cache)


if __name__ == "__main__":
    _fixed_numba_cache()
    from vital_desktop.app import entry

    entry()

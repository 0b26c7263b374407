"""Frozen entry point of `vital-desktop` (PyInstaller runs this file; on Linux via launch.py)."""

import os
import sys
from pathlib import Path


def _fixed_numba_cache() -> None:
    # In a frozen app numba's cache follows the working directory (NUMBA_CACHE_DIR was ignored,
    # shared/STACK-NOTES.md): pin the working directory to a writable app-data folder first.
    import platformdirs

    cache = Path(platformdirs.user_cache_dir("vital-desktop", "VITAL")) / "numba"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache))
    os.chdir(cache)


def _run_code_if_asked() -> None:
    # The model sandbox (vital_desktop/inference/sandbox.py) runs its trial child as
    # `sys.executable -c CODE ARGS...`, the interpreter's interface. In a frozen app
    # sys.executable is this program, so it answers that interface the way python does.
    if len(sys.argv) >= 3 and sys.argv[1] == "-c":
        code = sys.argv[2]
        sys.argv = ["-c", *sys.argv[3:]]
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - same user, own code
        sys.exit(0)


def _installed_model() -> None:
    # An installed copy runs from APP_ROOT/versions/<version>/; the installer keeps the default
    # language model once for every version in APP_ROOT/models/ (not inside each version).
    here = Path(sys.executable).resolve().parent
    models = here.parent.parent / "models"
    if here.parent.name == "versions" and models.is_dir():
        found = sorted(models.glob("*.gguf"))
        if found:
            os.environ.setdefault("VITAL_DEFAULT_GGUF", str(found[0]))


if __name__ == "__main__":
    _run_code_if_asked()
    _installed_model()
    _fixed_numba_cache()
    from vital_desktop.app import entry

    entry()

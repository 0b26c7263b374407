"""Frozen entry point of `vital` (PyInstaller runs this file on Windows; elsewhere launch.py)."""


if __name__ == "__main__":
    from launch_desktop import _installed_model, _run_code_if_asked

    _run_code_if_asked()
    _installed_model()
    from vital_desktop.cli import entry

    entry()

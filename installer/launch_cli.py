"""Frozen entry point of `vital` (PyInstaller runs this file)."""


if __name__ == "__main__":
    from vital_desktop.cli import entry

    entry()

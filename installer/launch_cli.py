"""Frozen entry point of `vital` (PyInstaller runs this file)."""

import sys

if __name__ == "__main__":
    from vital_desktop.cli import entry

    entry()

"""The `vital` command, split by area: each module here has `register(subparsers)`.

A command handler is ``handler(ctx: CliContext, args) -> dict``. The dict is what `--json`
prints (one object on stdout); without `--json` the CLI prints its ``"text"`` entry if there
is one, else the dict as indented JSON. Errors are raised as `VitalError`s: the CLI prints
them on stderr and exits non-zero. Services are responsible for leaving the store unchanged
on error.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vital_desktop.core.errors import PermissionDenied, ValidationError
from vital_desktop.core.progress import Progress, ProgressSnapshot, format_eta
from vital_desktop.core.users import User

#: Modules (under this package) whose `register(subparsers)` adds commands. Add yours here.
COMMAND_MODULES = [  # in the order `vital --help` lists them: the site, then the lifecycle
    "site",
    "sheets",
    "labels",
    "templates",
    "generate",
    "models",
    "lifecycle",
    "assist",
    "mc",
    "bundle",
    "support",
    "app",
]


@dataclass
class CliContext:
    home: Path | None
    json: bool
    username: str | None
    quiet: bool = False
    _store: Any = field(default=None, repr=False)
    _actor: User | None = field(default=None, repr=False)
    #: False when the store belongs to someone else (the desktop app running a bridged command)
    owns_store: bool = True
    #: the command runs inside the desktop app for a `vital` process (see vital_desktop.bridge)
    bridged: bool = False
    #: the password the bridged client sent (never the app's own environment)
    password: str | None = field(default=None, repr=False)
    on_progress: Callable[[ProgressSnapshot], None] | None = field(default=None, repr=False)

    @property
    def store(self):
        if self._store is None:
            from vital_desktop.store import open_store

            self._store = open_store(self.home, create=False, holder=_holder_text())
        return self._store

    @property
    def actor(self) -> User:
        """The signed-in user: ``--user``/``VITAL_USER``, password from ``VITAL_PASSWORD`` or a prompt."""
        if self._actor is None:
            self._actor = self.sign_in(self.store)
        return self._actor

    def sign_in(self, store: Any) -> User:
        """Authenticate ``--user``/``VITAL_USER`` against `store` (``VITAL_PASSWORD`` or a prompt;
        a command bridged into the running app brings its own name and password)."""
        from vital_desktop.services import accounts

        username = self.username or (None if self.bridged else os.environ.get("VITAL_USER"))
        if not username:
            raise ValidationError("say who you are: --user NAME (or set VITAL_USER)")
        password = self.password if self.bridged else os.environ.get("VITAL_PASSWORD")
        if password is None and self.bridged:
            raise PermissionDenied("no password: set VITAL_PASSWORD or run in a terminal to be asked")
        if password is None:
            if not sys.stdin.isatty():
                raise PermissionDenied("no password: set VITAL_PASSWORD or run in a terminal to be asked")
            password = getpass.getpass(f"Password for {username}: ")
        return accounts.authenticate(store, username, password)

    def progress(self, label: str = "") -> Progress:
        """A `Progress` that draws a text bar on stderr (nothing with --json or --quiet).

        Inside the desktop app (a bridged command) the same snapshots also go to the app's
        status bar through `on_progress`.
        """
        mirror = self.on_progress
        bar = not (self.json or self.quiet or not sys.stderr.isatty())
        if not bar and mirror is None:
            return Progress()

        def draw(snap: ProgressSnapshot) -> None:
            if mirror is not None:
                mirror(snap)
            if not bar:
                return
            width = 30
            filled = int(width * snap.fraction)
            left = f" {format_eta(snap.eta_s)} left" if snap.eta_s is not None else ""
            sys.stderr.write(
                f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {snap.done}/{snap.total}{left} "
                f"{snap.message[:40]:40s}"
            )
            if snap.total and snap.done >= snap.total:
                sys.stderr.write("\n")
            sys.stderr.flush()

        return Progress(on_update=draw, min_interval_s=0.1)

    def close(self) -> None:
        if self._store is not None and self.owns_store:
            self._store.close()
        self._store = None


def _holder_text() -> str:
    """How a desktop app waiting for this store names us ("vital train --sheet …")."""
    return "vital " + " ".join(sys.argv[1:])[:200]

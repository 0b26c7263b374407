"""The one error a bundle check raises: `BundleRefused`, carrying a stable reason code."""

from __future__ import annotations

from typing import Any

from vital_desktop.core.errors import ValidationError


class BundleRefused(ValidationError):
    """A bundle (or trust document) failed a check; `code` names the check for ledgers and tests.

    Codes are stable strings (``signature``, ``threshold``, ``rollback``, ``expired`` ...),
    listed in `bundles/FORMAT.md`; the message explains the refusal to an administrator.
    """

    kind = "bundle_refused"

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={"code": code, **(details or {})})
        self.code = code

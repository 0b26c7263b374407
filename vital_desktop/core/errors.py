"""The error hierarchy. Every error a user can cause is a `VitalError` with a clear message.

The CLI prints `str(error)` on stderr and exits with `error.exit_code`; the GUI shows it in a
message box. Nothing else is caught and hidden.
"""

from __future__ import annotations

from typing import Any


class VitalError(Exception):
    """Base class of every expected, user-facing error."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message, **({"details": self.details} if self.details else {})}


class ValidationError(VitalError):
    """Input that breaks a rule: bad file, bad column, bad JSON, schema mismatch."""

    exit_code = 2
    kind = "invalid_input"


class NotFoundError(VitalError):
    """A named thing (sheet, template, label, model, run…) does not exist."""

    exit_code = 3
    kind = "not_found"


class PermissionDenied(VitalError):
    """The acting user's role does not allow this action."""

    exit_code = 4
    kind = "permission_denied"


class ConflictError(VitalError):
    """The action clashes with current state (duplicate name, immutable version, claim held)."""

    exit_code = 5
    kind = "conflict"


class StoreLockedError(VitalError):
    """Another process holds the site store."""

    exit_code = 6
    kind = "store_locked"


class Cancelled(VitalError):
    """Work stopped because the user cancelled it; what finished before is kept."""

    exit_code = 130
    kind = "cancelled"

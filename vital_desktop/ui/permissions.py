"""What the signed-in user may do, shown up front: disabled controls with a visible reason.

The role checks themselves live in `services.accounts.require` (services refuse anyway); the UI
asks the same function before offering an action, so a user never fills in a form only to be
refused on Save, and a disabled button says why in a label beside it, not only in a tooltip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtWidgets import QLabel, QWidget

from vital_desktop.core.errors import PermissionDenied


def refusal(user: Any, permission: str) -> str | None:
    """Why `user` may not do `permission` (a sentence naming the roles that may), or None."""
    from vital_desktop.services.accounts import require

    try:
        require(user, permission)
    except PermissionDenied as exc:
        return exc.message
    return None


def permitted(user: Any, permission: str) -> bool:
    """Whether the signed-in user's role grants `permission`."""
    return refusal(user, permission) is None


def role_reason(user: Any, permission: str, what: str) -> str:
    """A short, user-facing reason: "Activating models needs the engineer or admin role (you are inspector)."."""
    from vital_desktop.services.accounts import PERMISSIONS

    roles = sorted(r.value for r in PERMISSIONS.get(permission, ()))
    needed = " or ".join(roles) if len(roles) <= 2 else ", ".join(roles[:-1]) + " or " + roles[-1]
    return f"{what} needs the {needed} role (you are {user.role.value})."


def reason_label(text: str = "") -> QLabel:
    """The visible reason beside disabled controls (hidden while empty)."""
    label = QLabel(text)
    label.setObjectName("permissionReason")
    label.setWordWrap(True)
    label.setVisible(bool(text))
    return label


def gate(user: Any, permission: str, widgets: Iterable[QWidget], label: QLabel | None, what: str) -> bool:
    """Disable `widgets` when `user` lacks `permission`, and say why in `label` (and the tooltips).

    Returns whether the user may. Call once when the page is built; pages that enable controls
    later (on a selection) must also check the returned flag.
    """
    allowed = permitted(user, permission)
    if not allowed:
        reason = role_reason(user, permission, what)
        for widget in widgets:
            widget.setEnabled(False)
            widget.setToolTip(reason)
        if label is not None:
            label.setText(reason)
            label.setVisible(True)
    return allowed

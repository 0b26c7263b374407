"""Local accounts: scrypt password hashes, roles, and the role checks every service uses."""

from __future__ import annotations

import base64
import hmac
import os
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from vital_desktop.core.users import Role, User
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import UserRow

# scrypt cost: n=2**14, r=8, p=1 (~50 ms, 16 MiB) -- the interactive-login figure from RFC 7914.
_N, _R, _P = 2**14, 8, 1

#: What each role may do beyond what every signed-in user may do. Checked by `require`.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "label": frozenset({Role.INSPECTOR, Role.ENGINEER, Role.ADMIN}),
    "review": frozenset({Role.INSPECTOR, Role.ENGINEER, Role.ADMIN}),
    "feedback": frozenset({Role.INSPECTOR, Role.ENGINEER, Role.ADMIN}),
    "predict": frozenset({Role.INSPECTOR, Role.ENGINEER, Role.ADMIN}),
    "import_sheet": frozenset({Role.ENGINEER, Role.ADMIN}),
    "edit_template": frozenset({Role.ENGINEER, Role.ADMIN}),
    "publish_template": frozenset({Role.ENGINEER, Role.ADMIN}),
    "generate": frozenset({Role.ENGINEER, Role.ADMIN}),
    "train": frozenset({Role.ENGINEER, Role.ADMIN}),
    "deploy": frozenset({Role.ENGINEER, Role.ADMIN}),
    "register_model": frozenset({Role.ENGINEER, Role.ADMIN}),
    "review_feedback": frozenset({Role.ENGINEER, Role.ADMIN}),
    "run_calibration": frozenset({Role.ENGINEER, Role.ADMIN}),
    "export_data": frozenset({Role.ENGINEER, Role.ADMIN}),
    "import_bundle": frozenset({Role.ADMIN}),
    "export_bundle": frozenset({Role.ADMIN}),
    "manage_users": frozenset({Role.ADMIN}),
    "manage_trust": frozenset({Role.ADMIN}),
}


def require(actor: User, permission: str) -> None:
    """Raise `PermissionDenied` unless the actor's role grants `permission`."""
    allowed = PERMISSIONS.get(permission)
    if allowed is None:
        raise KeyError(f"unknown permission {permission!r}")
    if actor.role not in allowed:
        roles = ", ".join(sorted(r.value for r in allowed))
        raise PermissionDenied(
            f"{actor.username} ({actor.role.value}) may not {permission.replace('_', ' ')}; this needs the role {roles}."
        )


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=_N, r=_R, p=_P).derive(password.encode("utf-8"))
    return "scrypt$%d$%d$%d$%s$%s" % (_N, _R, _P, base64.b64encode(salt).decode(), base64.b64encode(key).decode())


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, key_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    key = Scrypt(salt=base64.b64decode(salt_b64), length=32, n=int(n), r=int(r), p=int(p)).derive(
        password.encode("utf-8")
    )
    return hmac.compare_digest(key, base64.b64decode(key_b64))


@dataclass(frozen=True)
class UserInfo:
    id: str
    username: str
    display_name: str
    role: str
    active: bool

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _to_user(row: UserRow) -> User:
    return User(id=row.id, username=row.username, role=Role(row.role), display_name=row.display_name)


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationError(f"unknown role {role!r}; choose inspector, engineer or admin") from None


def add_user(
    store: Store, *, actor: User, username: str, password: str, role: str, display_name: str = ""
) -> tuple[UserInfo, Changes]:
    require(actor, "manage_users")
    role_value = parse_role(role)
    if not username or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValidationError(f"user name {username!r} must be letters, digits, '.', '-' or '_'")
    if len(password) < 8:
        raise ValidationError("a password needs at least 8 characters")
    with store.session() as s:
        if s.scalar(sa.select(UserRow).where(UserRow.username == username)) is not None:
            raise ConflictError(f"a user named {username!r} already exists")
        row = UserRow(username=username, role=role_value.value, password_hash=hash_password(password),
                      display_name=display_name or username)
        s.add(row)
        audit.record(s, actor, "user.add", username, {"role": role_value.value})
        s.flush()
        info = UserInfo(row.id, row.username, row.display_name, row.role, row.active)
    return info, Changes(users=True)


def list_users(store: Store) -> list[UserInfo]:
    with store.read() as s:
        rows = s.scalars(sa.select(UserRow).order_by(UserRow.username)).all()
        return [UserInfo(r.id, r.username, r.display_name, r.role, r.active) for r in rows]


def authenticate(store: Store, username: str, password: str) -> User:
    """Return the user if the password matches; the same message for any failure."""
    with store.read() as s:
        row = s.scalar(sa.select(UserRow).where(UserRow.username == username))
    if row is None or not row.active or not check_password(password, row.password_hash):
        raise PermissionDenied("unknown user or wrong password")
    return _to_user(row)


def get_user(store: Store, username: str) -> User:
    with store.read() as s:
        row = s.scalar(sa.select(UserRow).where(UserRow.username == username))
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return _to_user(row)

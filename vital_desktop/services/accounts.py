"""Local accounts: scrypt password hashes, roles, sign-in, and the role checks every service uses.

Rules (docs/site-admin.md repeats them for administrators):

- **Password policy** (`check_password_policy`): at least `MIN_PASSWORD_LENGTH` (12)
  characters, at most 1,024, not all whitespace, not the user name. Twelve characters is the
  floor NIST SP 800-63B recommends for a password that is the only factor.
- **Sign-in** (`authenticate`): the same message for every failure; an unknown or disabled
  user costs the same scrypt derivation as a known one (a dummy hash), so user names cannot
  be told apart by timing; every failure is an ``auth.login_failed`` audit row, and after
  `MAX_FAILED_LOGINS` failures for one name within `THROTTLE_WINDOW` that name is refused
  (``auth.login_throttled``) until the window has passed or an admin enables the account again.
- **Who acts**: `require` refuses any `User` the accounts service did not issue (a forged
  object), and `store.audit.record` checks the acting user against the accounts table (it
  exists, is active and still has that role) inside the same transaction as the change.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import os
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from vital_desktop.core.ids import utcnow
from vital_desktop.core.users import SYSTEM_USER, Role, User, is_genuine, seal
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import AuditEntry, UserRow

# scrypt cost: n=2**14, r=8, p=1 (~50 ms, 16 MiB) -- the interactive-login figure from RFC 7914.
_N, _R, _P = 2**14, 8, 1

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_FAILED_LOGINS = 5
THROTTLE_WINDOW = dt.timedelta(minutes=15)
#: Audit actions after which earlier failed sign-ins of a name no longer count.
_THROTTLE_RESETS = ("user.enable", "user.passwd", "user.add")
_FAILURE_MESSAGE = "unknown user or wrong password"

#: What each role may do beyond what every signed-in user may do. Checked by `require`.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "label": frozenset({Role.INSPECTOR, Role.ENGINEER, Role.ADMIN}),
    "review": frozenset({Role.INSPECTOR, Role.ENGINEER, Role.ADMIN}),
    "feedback": frozenset({Role.INSPECTOR, Role.ENGINEER, Role.ADMIN}),
    "predict": frozenset({Role.INSPECTOR, Role.ENGINEER, Role.ADMIN}),
    "import_sheet": frozenset({Role.ENGINEER, Role.ADMIN}),
    "edit_template": frozenset({Role.ENGINEER, Role.ADMIN}),
    "publish_template": frozenset({Role.ENGINEER, Role.ADMIN}),
    "edit_taxonomy": frozenset({Role.ENGINEER, Role.ADMIN}),
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
    "erase_data": frozenset({Role.ADMIN}),
    "manage_policy": frozenset({Role.ADMIN}),
}


def require(actor: User, permission: str) -> None:
    """Raise `PermissionDenied` unless the actor was issued by this service and its role grants `permission`."""
    allowed = PERMISSIONS.get(permission)
    if allowed is None:
        raise KeyError(f"unknown permission {permission!r}")
    if not is_genuine(actor):
        raise PermissionDenied("the acting user is not signed in (this user object was not issued by sign-in)")
    if actor.role not in allowed:
        roles = ", ".join(sorted(r.value for r in allowed))
        raise PermissionDenied(
            f"{actor.username} ({actor.role.value}) may not {permission.replace('_', ' ')}; this needs the role {roles}."
        )


def hash_password(password: str) -> str:
    """A fresh salted scrypt hash: ``scrypt$n$r$p$salt$key`` (base64)."""
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=_N, r=_R, p=_P).derive(password.encode("utf-8"))
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def check_password(password: str, stored: str) -> bool:
    """True if `password` matches the stored hash; False for a wrong password or a malformed hash."""
    try:
        scheme, n, r, p, salt_b64, key_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        kdf = Scrypt(salt=base64.b64decode(salt_b64), length=32, n=int(n), r=int(r), p=int(p))
        expected = base64.b64decode(key_b64)
    except (ValueError, TypeError):
        return False
    key = kdf.derive(password.encode("utf-8", "surrogatepass"))
    return hmac.compare_digest(key, expected)


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    """A hash no password matches, checked for unknown users so they cost what a known one costs."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(base64.b64encode(os.urandom(24)).decode()))
    return _DUMMY_HASH[0]


def check_password_policy(password: str, username: str = "") -> None:
    """Raise `ValidationError` unless the password meets the site's policy (see the module docstring)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise ValidationError("a password cannot be only spaces or other whitespace")
    if username and password.strip().lower() == username.strip().lower():
        raise ValidationError("a password cannot be the user name")


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
    return seal(User(id=row.id, username=row.username, role=Role(row.role), display_name=row.display_name))


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValidationError(f"unknown role {role!r}; choose inspector, engineer or admin") from None



def _check_username(username: str) -> None:
    if not username or len(username) > 64 or not username.replace("_", "").replace("-", "").replace(".", "").isalnum() \
            or not username.isascii():
        raise ValidationError(f"user name {username!r} must be 1-64 ASCII letters, digits, '.', '-' or '_'")


def _insert_user(store: Store, actor: User, username: str, password: str, role: Role, display_name: str) -> UserInfo:
    with store.session() as s:
        if s.scalar(sa.select(UserRow).where(UserRow.username == username)) is not None:
            raise ConflictError(f"a user named {username!r} already exists")
        row = UserRow(username=username, role=role.value, password_hash=hash_password(password),
                      display_name=display_name or username)
        s.add(row)
        audit.record(s, actor, "user.add", username, {"role": role.value})
        s.flush()
        return UserInfo(row.id, row.username, row.display_name, row.role, row.active)


def add_user(
    store: Store, *, actor: User, username: str, password: str, role: str, display_name: str = ""
) -> tuple[UserInfo, Changes]:
    """Add an account (admins only); the password must meet `check_password_policy`."""
    require(actor, "manage_users")
    role_value = parse_role(role)
    _check_username(username)
    check_password_policy(password, username)
    return _insert_user(store, actor, username, password, role_value, display_name), Changes(users=True)


def add_demo_user(store: Store, *, username: str, password: str, role: str, display_name: str = "") -> UserInfo:
    """Add one of the DEMO accounts (public passwords, exempt from the policy). The system only:
    `services.demo_site` calls it solely for a store created by that same ``init --demo`` call."""
    _check_username(username)
    return _insert_user(store, SYSTEM_USER, username, password, parse_role(role), display_name)


def count_users(store: Store) -> int:
    """How many accounts exist (0 means the site has not been given its first administrator)."""
    with store.read() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(UserRow)) or 0)


def list_users(store: Store) -> list[UserInfo]:
    """Every account, by user name."""
    with store.read() as s:
        rows = s.scalars(sa.select(UserRow).order_by(UserRow.username)).all()
        return [UserInfo(r.id, r.username, r.display_name, r.role, r.active) for r in rows]


def _recent_failures(session: sa.orm.Session, username: str, now: dt.datetime) -> list[dt.datetime]:
    reset = session.scalar(sa.select(sa.func.max(AuditEntry.seq)).where(
        AuditEntry.target == username, AuditEntry.action.in_(_THROTTLE_RESETS)))
    query = sa.select(AuditEntry.logged_at).where(
        AuditEntry.action == "auth.login_failed", AuditEntry.target == username,
        AuditEntry.logged_at > now - THROTTLE_WINDOW)
    if reset is not None:
        query = query.where(AuditEntry.seq > reset)
    return list(session.scalars(query.order_by(AuditEntry.logged_at)))


def authenticate(store: Store, username: str, password: str) -> User:
    """Return the signed-in user if the password matches; the same message for any failure.

    Unknown and disabled users cost one scrypt derivation like a known user (no timing oracle);
    each failure is audited, and a name with `MAX_FAILED_LOGINS` recent failures is throttled.
    """
    now = utcnow()
    username = username if isinstance(username, str) else ""
    password = password if isinstance(password, str) else ""
    with store.read() as s:
        row = s.scalar(sa.select(UserRow).where(UserRow.username == username))
        failures = _recent_failures(s, username, now)
    stored = row.password_hash if row is not None else _dummy_hash()
    matches = check_password(password[:MAX_PASSWORD_LENGTH], stored)
    if len(failures) >= MAX_FAILED_LOGINS:
        wait = failures[-MAX_FAILED_LOGINS] + THROTTLE_WINDOW - now
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        with store.session() as s:
            audit.record(s, "anonymous", "auth.login_throttled", username, {"recent_failures": len(failures)})
        raise PermissionDenied(f"too many failed sign-ins for {username!r}; try again in {minutes} minute(s) "
                               "or ask an administrator to enable the account again")
    if row is None or not row.active or not matches or len(password) > MAX_PASSWORD_LENGTH:
        with store.session() as s:
            audit.record(s, "anonymous", "auth.login_failed", username, {"failures_in_window": len(failures) + 1})
        raise PermissionDenied(_FAILURE_MESSAGE)
    return _to_user(row)


def get_user(store: Store, username: str) -> User:
    """A trusted in-process lookup (demo build, system tasks, tests): never feed it user input
    in place of `authenticate`."""
    with store.read() as s:
        row = s.scalar(sa.select(UserRow).where(UserRow.username == username))
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return _to_user(row)


def _active_admins(session: sa.orm.Session) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(UserRow).where(
        UserRow.role == Role.ADMIN.value, UserRow.active.is_(True))) or 0)


def set_active(store: Store, *, actor: User, username: str, active: bool) -> tuple[UserInfo, Changes]:
    """Disable or enable an account (admins only). Enabling also clears the sign-in throttle.
    The last active administrator cannot be disabled, and nobody disables themselves."""
    require(actor, "manage_users")
    with store.session() as s:
        row = s.scalar(sa.select(UserRow).where(UserRow.username == username))
        if row is None:
            raise NotFoundError(f"no user named {username!r}")
        if not active:
            if row.id == actor.id:
                raise ConflictError("you cannot disable your own account; ask another administrator")
            if row.role == Role.ADMIN.value and row.active and _active_admins(s) <= 1:
                raise ConflictError(f"{username} is the last active administrator; add another one first")
        row.active = active
        audit.record(s, actor, "user.enable" if active else "user.disable", username, {})
        s.flush()
        return UserInfo(row.id, row.username, row.display_name, row.role, row.active), Changes(users=True)


def change_password(store: Store, *, actor: User, username: str, new_password: str,
                    current_password: str | None = None) -> tuple[UserInfo, Changes]:
    """Set a new password: an admin for any account, any user for their own (with the current one)."""
    if not is_genuine(actor):
        raise PermissionDenied("the acting user is not signed in (this user object was not issued by sign-in)")
    own = actor.username == username
    if not own:
        require(actor, "manage_users")
    check_password_policy(new_password, username)
    with store.session() as s:
        row = s.scalar(sa.select(UserRow).where(UserRow.username == username))
        if row is None:
            raise NotFoundError(f"no user named {username!r}")
        if own and not actor.is_admin and (current_password is None
                                           or not check_password(current_password, row.password_hash)):
            raise PermissionDenied("to change your own password, give the current one")
        if check_password(new_password, row.password_hash):
            raise ValidationError("the new password is the same as the current one")
        row.password_hash = hash_password(new_password)
        audit.record(s, actor, "user.passwd", username, {"by_admin": not own})
        s.flush()
        return UserInfo(row.id, row.username, row.display_name, row.role, row.active), Changes(users=True)


# --- administration (the Users page; audited) ----------------------------------------------------


def _user_row(s, username: str) -> UserRow:
    row = s.scalar(sa.select(UserRow).where(UserRow.username == username))
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return row


def _check_keeps_an_admin(s, row: UserRow, *, role: str | None = None, active: bool | None = None) -> None:
    """Refuse a change that would leave the site without an active administrator."""
    stays_admin = (role or row.role) == Role.ADMIN.value and (row.active if active is None else active)
    if row.role != Role.ADMIN.value or not row.active or stays_admin:
        return
    others = s.scalar(sa.select(sa.func.count()).select_from(UserRow).where(
        UserRow.role == Role.ADMIN.value, UserRow.active.is_(True), UserRow.id != row.id))
    if not others:
        raise ConflictError(f"{row.username} is the last active administrator; make another user an administrator first")


def set_user_role(store: Store, *, actor: User, username: str, role: str) -> tuple[UserInfo, Changes]:
    """Change a user's role (inspector, engineer, admin)."""
    require(actor, "manage_users")
    role_value = parse_role(role)
    with store.session() as s:
        row = _user_row(s, username)
        _check_keeps_an_admin(s, row, role=role_value.value)
        before = row.role
        row.role = role_value.value
        audit.record(s, actor, "user.role", username, {"from": before, "to": role_value.value})
        s.flush()
        info = UserInfo(row.id, row.username, row.display_name, row.role, row.active)
    return info, Changes(users=True)

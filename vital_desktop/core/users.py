"""Local accounts: who acts, and in which role, and the proof that the accounts service said so.

A `User` carries a credential: an HMAC over (id, user name, role) made with a per-process
secret. Only `services.accounts` issues such objects (after a password check, or for trusted
in-process lookups such as the demo build); every service refuses any other `User`
(`is_genuine`), so a `User(role=Role.ADMIN)` built by hand gets nowhere.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from dataclasses import dataclass, field, replace


class Role(str, enum.Enum):  # noqa: UP042 - a StrEnum would change how roles print in existing messages
    INSPECTOR = "inspector"
    ENGINEER = "engineer"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    id: str
    username: str
    role: Role
    display_name: str = ""
    #: Proof that the accounts service issued this object; empty on a `User` built by hand.
    credential: str = field(default="", repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


#: The user that acts for the system itself (migrations, demo creation, start-up cleanup).
#: Accepted by identity only (``actor is SYSTEM_USER``): a copy of it is refused. It is never
#: reachable from the command line or the desktop's sign-in; only in-process code holds it.
SYSTEM_USER = User(id="system", username="system", role=Role.ADMIN, display_name="VITAL system")

_SECRET = os.urandom(32)


def _mac(user: User) -> str:
    message = f"{user.id}\0{user.username}\0{user.role.value}".encode()
    return hmac.new(_SECRET, message, hashlib.sha256).hexdigest()


def seal(user: User) -> User:
    """The same user with a credential proving this process's accounts service issued it."""
    return replace(user, credential=_mac(user))


def is_genuine(user: object) -> bool:
    """True for `SYSTEM_USER` itself and for users issued by `seal`; False for anything built by hand."""
    if user is SYSTEM_USER:
        return True
    if not isinstance(user, User) or not isinstance(user.role, Role) or not user.credential:
        return False
    return hmac.compare_digest(user.credential, _mac(user))

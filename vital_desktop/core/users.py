"""Local accounts: who acts, and in which role."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    INSPECTOR = "inspector"
    ENGINEER = "engineer"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    id: str
    username: str
    role: Role
    display_name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


#: The user that acts for the system itself (migrations, demo creation, start-up cleanup).
SYSTEM_USER = User(id="system", username="system", role=Role.ADMIN, display_name="VITAL system")

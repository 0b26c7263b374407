"""Users (administrators): add a user, disable or re-enable, reset a password, change a role.

Every change goes through `services.accounts` on the writer thread and is in the audit log;
the service refuses what would lock the site out (disabling yourself, the last administrator).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLineEdit, QPushButton, QSplitter, QWidget

from vital_desktop.core.changes import Changes
from vital_desktop.core.users import Role
from vital_desktop.services import accounts
from vital_desktop.ui import theme
from vital_desktop.ui.charts import fill_table, read_only_table, selected_data
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.widgets import Card, error_text, muted_label, page_layout, primary_button

ROLE_TITLES = {Role.INSPECTOR.value: "inspector — labels, reviews, flags predictions",
               Role.ENGINEER.value: "engineer — also templates, training, deployment",
               Role.ADMIN.value: "admin — also users, bundles and trust"}


def _role_combo() -> QComboBox:
    combo = QComboBox()
    for role, title in ROLE_TITLES.items():
        combo.addItem(title, role)
    return combo


class UsersPage(Page):
    """The site's local accounts."""

    stage = "users"
    title = "USERS"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.users: list[accounts.UserInfo] = []
        root, _header = page_layout(self, "Users", "Local accounts and their roles; every change is audited.")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter, 1)

        list_card = Card("Accounts")
        self.table = read_only_table(["user", "name", "role", "status"])
        self.table.itemSelectionChanged.connect(self._selected)
        list_card.body.addWidget(self.table, 1)
        selected = QFormLayout()
        self.role = _role_combo()
        self.role_button = QPushButton("Change role")
        self.role_button.clicked.connect(lambda: self.change_role())
        role_row = QHBoxLayout()
        role_row.addWidget(self.role, 1)
        role_row.addWidget(self.role_button)
        selected.addRow("Role", role_row)
        self.new_password = QLineEdit()
        self.new_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_password.setPlaceholderText(f"at least {accounts.MIN_PASSWORD_LENGTH} characters")
        self.new_password.returnPressed.connect(lambda: self.reset_password())
        self.password_button = QPushButton("Reset password")
        self.password_button.clicked.connect(lambda: self.reset_password())
        password_row = QHBoxLayout()
        password_row.addWidget(self.new_password, 1)
        password_row.addWidget(self.password_button)
        selected.addRow("New password", password_row)
        self.active_button = QPushButton("Disable")
        self.active_button.clicked.connect(lambda: self.toggle_active())
        selected.addRow("", self.active_button)
        list_card.body.addLayout(selected)
        self.message = muted_label()
        self.message.setTextFormat(Qt.TextFormat.RichText)
        list_card.body.addWidget(self.message)
        splitter.addWidget(list_card)

        add_card = Card("Add a user")
        form = QFormLayout()
        self.add_username = QLineEdit()
        self.add_username.setPlaceholderText("letters, digits, '.', '-' or '_'")
        self.add_display = QLineEdit()
        self.add_role = _role_combo()
        self.add_password = QLineEdit()
        self.add_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.add_password.setPlaceholderText(f"at least {accounts.MIN_PASSWORD_LENGTH} characters")
        self.add_password.returnPressed.connect(lambda: self.add_user())
        form.addRow("User name", self.add_username)
        form.addRow("Display name", self.add_display)
        form.addRow("Role", self.add_role)
        form.addRow("Password", self.add_password)
        add_card.body.addLayout(form)
        self.add_button = primary_button("Add user")
        self.add_button.clicked.connect(lambda: self.add_user())
        add_card.body.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignRight)
        self.add_message = muted_label()
        self.add_message.setTextFormat(Qt.TextFormat.RichText)
        add_card.body.addWidget(self.add_message)
        add_card.body.addStretch(1)
        splitter.addWidget(add_card)
        splitter.setSizes([700, 420])
        self.reload()

    # --- data -----------------------------------------------------------------------------------
    def reload(self, select: str | None = None) -> None:
        current = select or selected_data(self.table)
        self.context.query("users", lambda op: accounts.list_users(op.store), key="users.list",
                           on_result=lambda users: self._show(users, current))

    def _show(self, users: list[accounts.UserInfo], current: str | None) -> None:
        self.users = users
        fill_table(self.table, [(u.username, u.display_name, u.role, "active" if u.active else "disabled")
                                for u in users], data=[u.username for u in users],
                   colors={(r, 3): theme.SUCCESS if u.active else theme.DANGER for r, u in enumerate(users)})
        names = [u.username for u in users]
        if current in names:
            self.table.selectRow(names.index(current))
        elif users:
            self.table.selectRow(0)
        self._selected()

    def selected_user(self) -> accounts.UserInfo | None:
        name = selected_data(self.table)
        return next((u for u in self.users if u.username == name), None)

    def _selected(self) -> None:
        user = self.selected_user()
        for widget in (self.role, self.role_button, self.new_password, self.password_button, self.active_button):
            widget.setEnabled(user is not None)
        if user is None:
            return
        self.role.setCurrentIndex(max(self.role.findData(user.role), 0))
        self.active_button.setText("Disable" if user.active else "Enable")
        yourself = user.username == self.context.user.username
        self.active_button.setEnabled(not (yourself and user.active))
        self.active_button.setToolTip("You cannot disable your own account" if yourself else "")

    # --- actions --------------------------------------------------------------------------------
    def _run(self, title: str, fn: Any, done_text: str, message: Any = None) -> None:
        label = message or self.message

        def failed(exc: BaseException) -> None:
            label.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")

        def done(info: Any) -> None:
            label.setText(done_text)
            self.reload(info.username)

        self.context.change(title, fn, on_result=done, on_error=failed)

    def add_user(self) -> None:
        username, display = self.add_username.text().strip(), self.add_display.text().strip()
        password, role = self.add_password.text(), self.add_role.currentData()
        self.add_password.clear()
        self._run(f"Adding user {username}", lambda op: accounts.add_user(
            op.store, actor=op.actor, username=username, password=password, role=role, display_name=display),
            f"Added {username} ({role}).", self.add_message)
        self.add_username.setFocus()

    def change_role(self) -> None:
        user, role = self.selected_user(), self.role.currentData()
        if user is None or role == user.role:
            return
        name = user.username
        self._run(f"Changing the role of {name}",
                  lambda op: accounts.set_user_role(op.store, actor=op.actor, username=name, role=role),
                  f"{name} is now {role}.")

    def reset_password(self) -> None:
        user, password = self.selected_user(), self.new_password.text()
        if user is None:
            return
        self.new_password.clear()
        name = user.username
        self._run(f"Resetting the password of {name}",
                  lambda op: accounts.change_password(op.store, actor=op.actor, username=name, new_password=password),
                  f"New password set for {name}; tell them in person.")
        self.table.setFocus()

    def toggle_active(self) -> None:
        user = self.selected_user()
        if user is None:
            return
        name, active = user.username, not user.active
        self._run(f"{'Enabling' if active else 'Disabling'} {name}",
                  lambda op: accounts.set_active(op.store, actor=op.actor, username=name, active=active),
                  f"{name} is {'enabled' if active else 'disabled: they can no longer sign in'}.")

    # --- page protocol --------------------------------------------------------------------------
    def on_changes(self, changes: Changes) -> None:
        if changes.users:
            self.reload()

    def activate(self, **arguments: Any) -> None:
        self.reload()

"""Sign in with a local account (scrypt-checked by `services.accounts`)."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout

from vital_desktop.core.users import User
from vital_desktop.services import accounts
from vital_desktop.store.db import Store
from vital_desktop.ui.widgets import error_text, muted_label, title_label


class LoginDialog(QDialog):
    def __init__(self, store: Store, username: str = "") -> None:
        super().__init__()
        self.setWindowTitle("VITAL Desktop — sign in")
        self.store = store
        self.user: User | None = None
        self.username = QLineEdit(username)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("User", self.username)
        form.addRow("Password", self.password)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Sign in")
        buttons.accepted.connect(self.try_login)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(title_label("VITAL Desktop", "pageTitle"))
        layout.addWidget(muted_label(f"Site store: {store.path}"))
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        (self.password if username else self.username).setFocus()
        self.resize(420, 220)

    def try_login(self) -> None:
        try:
            self.user = accounts.authenticate(self.store, self.username.text().strip(), self.password.text())
        except Exception as exc:  # noqa: BLE001 - shown in the dialog
            self.message.setText(error_text(exc))
            self.password.selectAll()
            return
        self.accept()

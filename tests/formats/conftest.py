"""Fixtures for the label formats: a second, fresh site over the same images (round trips)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PASSWORDS, ROLES


@pytest.fixture
def fresh_site(small_site, tmp_path: Path):
    """Another site (its own store) with the same 'Crystals' sheet over the same image files."""
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts, sheets
    from vital_desktop.store import open_store

    store = open_store(tmp_path / "fresh-home")
    from vital_desktop.services.demo_site import seed_demo_label_types

    seed_demo_label_types(store)  # the same label types as the small site (site data on both)
    users = {}
    for name, role in ROLES.items():
        accounts.add_user(store, actor=SYSTEM_USER, username=name, password=PASSWORDS[name], role=role)
        users[name] = accounts.get_user(store, name)
    sheets.import_sheet(store, actor=users["engineer"], name="Crystals", metadata_path=small_site.metadata,
                        key_column="inspection_id", image_root=small_site.images, image_column="image_path")
    yield type(small_site)(tmp_path / "fresh-home", store, small_site.images, small_site.metadata, "Crystals", users)
    store.close()
